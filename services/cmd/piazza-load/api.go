package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
)

// apiClient speaks the accounts and listings HTTP API (docs/api.md) as a
// vendor: sign up, create a vendor profile, apply for stalls.
type apiClient struct {
	base  string
	http  *http.Client
	token string
	// lastApplication is the body of the last application apply made.
	lastApplication []byte
}

// errNoAPI says that the build under test lacks an endpoint a scenario
// needs (the API is still being built); the scenario stops with a message.
var errNoAPI = errors.New("endpoint not available in this build")

type apiError struct {
	Status int
	Body   string
}

func (e *apiError) Error() string { return fmt.Sprintf("HTTP %d: %s", e.Status, e.Body) }

func (a *apiClient) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if a.token != "" {
		req.Header.Set("Authorization", "Bearer "+a.token)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch {
	case resp.StatusCode == http.StatusNotFound && len(b) < 40 || resp.StatusCode == http.StatusMethodNotAllowed:
		return fmt.Errorf("%s %s: %w (HTTP %d)", method, path, errNoAPI, resp.StatusCode)
	case resp.StatusCode >= 300:
		return &apiError{Status: resp.StatusCode, Body: string(bytes.TrimSpace(b))}
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

var accountSeq atomic.Int64

// signUp creates a new vendor account and keeps its access token. Sign-up is
// rate limited per address: it retries on 429.
func (a *apiClient) signUp(ctx context.Context) error {
	email := fmt.Sprintf("load-%d-%d@piazza.example", time.Now().UnixNano(), accountSeq.Add(1))
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	for attempt := 0; ; attempt++ {
		err := a.do(ctx, http.MethodPost, "/api/v1/accounts/signup",
			map[string]string{"email": email, "password": "load-harness-password", "name": "Load Vendor"}, &tok)
		var ae *apiError
		if errors.As(err, &ae) && ae.Status == http.StatusTooManyRequests && attempt < 20 {
			if err := sleepCtx(ctx, time.Second); err != nil {
				return err
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("sign up: %w", err)
		}
		a.token = tok.AccessToken
		return nil
	}
}

func (a *apiClient) createVendor(ctx context.Context, city string) (string, error) {
	var v struct {
		ID string `json:"id"`
	}
	err := a.do(ctx, http.MethodPost, "/api/v1/listings/vendors", map[string]string{
		"city": city, "name": "Load " + uuid.NewString()[:8], "kind": "farmer", "description": "A load-test vendor."}, &v)
	if err != nil {
		return "", fmt.Errorf("create vendor: %w", err)
	}
	return v.ID, nil
}

type marketDay struct {
	ID     string `json:"id"`
	Date   string `json:"date"`
	Status string `json:"status"`
}

// marketDays lists the city's scheduled or open days for the next 60 days.
func (a *apiClient) marketDays(ctx context.Context, city string) ([]marketDay, error) {
	from := time.Now().Format(time.DateOnly)
	to := time.Now().AddDate(0, 0, 60).Format(time.DateOnly)
	var page struct {
		Items []marketDay `json:"items"`
	}
	if err := a.do(ctx, http.MethodGet, "/api/v1/listings/cities/"+city+"/market-days?from="+from+"&to="+to, nil, &page); err != nil {
		return nil, fmt.Errorf("market days: %w", err)
	}
	var days []marketDay
	for _, d := range page.Items {
		if d.Status == "scheduled" || d.Status == "open" {
			days = append(days, d)
		}
	}
	if len(days) == 0 {
		return nil, fmt.Errorf("market days: none scheduled in %s (demo data?)", city)
	}
	return days, nil
}

type application struct {
	ID     string `json:"id"`
	Status string `json:"status"`
}

func (a *apiClient) apply(ctx context.Context, dayID, vendorID string) (application, error) {
	var raw json.RawMessage
	var app application
	err := a.do(ctx, http.MethodPost, "/api/v1/listings/market-days/"+dayID+"/applications",
		map[string]string{"vendor_id": vendorID}, &raw)
	if err != nil {
		return app, err
	}
	a.lastApplication = raw
	return app, json.Unmarshal(raw, &app)
}

// vendorAgent applies for stalls as one account, one vendor profile at a
// time: a profile applies once per market day, so it takes a new profile
// when it has applied to every day.
type vendorAgent struct {
	api    *apiClient
	city   string
	days   []marketDay
	vendor string
	next   int
}

// applyNext posts the next application and returns it with the vendor and
// day it was for.
func (v *vendorAgent) applyNext(ctx context.Context) (application, string, string, error) {
	if v.vendor == "" || v.next >= len(v.days) {
		id, err := v.api.createVendor(ctx, v.city)
		if err != nil {
			return application{}, "", "", err
		}
		v.vendor, v.next = id, 0
	}
	d := v.days[v.next]
	v.next++
	app, err := v.api.apply(ctx, d.ID, v.vendor)
	return app, v.vendor, d.ID, err
}
