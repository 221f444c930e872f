package main

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// The API calls of the live market day, for the latency scenario: a manager
// (or the admin) makes a place with a pitch plan and an auto-accept market
// held every day, opens today's day; vendors apply, check in and post
// statuses (services/listings/openapi.yaml).

// Demo accounts of the accounts service (-demo-data).
const (
	demoAdmin    = "admin@piazza.example"
	demoPassword = "piazza-demo"
)

// signIn signs in with a password and keeps the access token (15 minutes:
// longer than any run's setup and -duration together).
func (a *apiClient) signIn(ctx context.Context, email, password string) error {
	var tok struct {
		AccessToken string `json:"access_token"`
	}
	if err := a.do(ctx, http.MethodPost, "/api/v1/accounts/signin",
		map[string]string{"email": email, "password": password}, &tok); err != nil {
		return fmt.Errorf("sign in as %s: %w", email, err)
	}
	a.token = tok.AccessToken
	return nil
}

// pitchSpec is a PitchCreate.
type pitchSpec struct {
	Code string  `json:"code"`
	X    float64 `json:"x"`
	Y    float64 `json:"y"`
	W    float64 `json:"w"`
	H    float64 `json:"h"`
}

// placeSpec is a PlaceCreate.
type placeSpec struct {
	Name    string      `json:"name"`
	Lat     float64     `json:"lat"`
	Lon     float64     `json:"lon"`
	PlanW   float64     `json:"plan_w"`
	PlanH   float64     `json:"plan_h"`
	Pitches []pitchSpec `json:"pitches"`
}

// Pitch plan: 3 m squares on a 4 m grid, pitchCols to a row.
const (
	pitchSize  = 3.0
	pitchPitch = 4.0
	pitchCols  = 20
	planMargin = 1.0
)

// pitchPlan lays out n pitches (P001, P002, …) in rows and returns the
// plan's size: every pitch inside it, none overlapping.
func pitchPlan(n int) (w, h float64, pitches []pitchSpec) {
	for i := range n {
		pitches = append(pitches, pitchSpec{Code: fmt.Sprintf("P%03d", i+1),
			X: planMargin + float64(i%pitchCols)*pitchPitch, Y: planMargin + float64(i/pitchCols)*pitchPitch,
			W: pitchSize, H: pitchSize})
	}
	cols, rows := min(n, pitchCols), (n+pitchCols-1)/pitchCols
	return 2*planMargin + float64(max(cols, 1))*pitchPitch, 2*planMargin + float64(max(rows, 1))*pitchPitch, pitches
}

// placeSizes splits n stalls over places of at most per pitches each.
func placeSizes(n, per int) []int {
	var sizes []int
	for n > 0 {
		k := min(n, per)
		sizes = append(sizes, k)
		n -= k
	}
	return sizes
}

func (a *apiClient) createPlace(ctx context.Context, city string, p placeSpec) (string, error) {
	var out struct {
		ID string `json:"id"`
	}
	if err := a.do(ctx, http.MethodPost, "/api/v1/listings/cities/"+city+"/places", p, &out); err != nil {
		return "", fmt.Errorf("create place: %w", err)
	}
	return out.ID, nil
}

// scheduleEntry is a ScheduleEntry: ISO weekday, local HH:MM.
type scheduleEntry struct {
	Weekday int    `json:"weekday"`
	Opens   string `json:"opens"`
	Closes  string `json:"closes"`
}

// wholeWeek is a schedule held every day from midnight to the last minute
// of the day (a day's closing must be after its opening on the same date),
// so that today has a market day at any time of a run.
func wholeWeek() []scheduleEntry {
	s := make([]scheduleEntry, 7)
	for i := range s {
		s[i] = scheduleEntry{Weekday: i + 1, Opens: "00:00", Closes: "23:59"}
	}
	return s
}

// marketSpec is a MarketCreate.
type marketSpec struct {
	PlaceID     string          `json:"place_id"`
	Name        string          `json:"name"`
	Schedule    []scheduleEntry `json:"schedule"`
	SeasonStart string          `json:"season_start"`
	AutoAccept  bool            `json:"auto_accept"`
	Description string          `json:"description"`
}

// loadMarket is an auto-accept market on place, every day of the week,
// whose season began yesterday (UTC: on or before today in any timezone).
func loadMarket(placeID, name string, now time.Time) marketSpec {
	return marketSpec{PlaceID: placeID, Name: name, Schedule: wholeWeek(),
		SeasonStart: now.UTC().AddDate(0, 0, -1).Format(time.DateOnly), AutoAccept: true,
		Description: "A market of the load harness, held all day every day."}
}

func (a *apiClient) createMarket(ctx context.Context, city string, m marketSpec) (string, error) {
	var out struct {
		ID string `json:"id"`
	}
	if err := a.do(ctx, http.MethodPost, "/api/v1/listings/cities/"+city+"/markets", m, &out); err != nil {
		return "", fmt.Errorf("create market: %w", err)
	}
	return out.ID, nil
}

// todayDay is a market day as GET /cities/{city}/today lists it.
type todayDay struct {
	ID     string `json:"id"`
	Date   string `json:"date"`
	Status string `json:"status"`
	Market struct {
		ID string `json:"id"`
	} `json:"market"`
}

// todaysDays returns the city's market days of today (its local date), by
// market id.
func (a *apiClient) todaysDays(ctx context.Context, city string) (map[string]todayDay, error) {
	var out struct {
		Date       string     `json:"date"`
		MarketDays []todayDay `json:"market_days"`
	}
	if err := a.do(ctx, http.MethodGet, "/api/v1/listings/cities/"+city+"/today", nil, &out); err != nil {
		return nil, fmt.Errorf("today's market days: %w", err)
	}
	days := map[string]todayDay{}
	for _, d := range out.MarketDays {
		days[d.Market.ID] = d
	}
	return days, nil
}

func (a *apiClient) openDay(ctx context.Context, dayID string) error {
	if err := a.do(ctx, http.MethodPost, "/api/v1/listings/market-days/"+dayID+"/open", nil, nil); err != nil {
		return fmt.Errorf("open market day %s: %w", dayID, err)
	}
	return nil
}

func (a *apiClient) checkIn(ctx context.Context, appID string) error {
	if err := a.do(ctx, http.MethodPost, "/api/v1/listings/applications/"+appID+"/check-in", nil, nil); err != nil {
		return fmt.Errorf("check in %s: %w", appID, err)
	}
	return nil
}

func (a *apiClient) postStatus(ctx context.Context, appID, text string) error {
	return a.do(ctx, http.MethodPost, "/api/v1/listings/applications/"+appID+"/status-posts",
		map[string]string{"text": text}, nil)
}

// via returns a copy of a (its token) whose requests go over hc.
func (a *apiClient) via(hc *http.Client) *apiClient {
	c := *a
	c.http = hc
	return &c
}
