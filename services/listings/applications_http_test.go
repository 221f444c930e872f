package listings

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/localeurope/piazza/pkg/auth"
	"github.com/localeurope/piazza/services/contract"
)

// sendKey is c.send with an Idempotency-Key.
func (c caller) sendKey(method, path string, body any, key string) response {
	c.tb.Helper()
	raw, _ := json.Marshal(body)
	req, err := http.NewRequestWithContext(context.Background(), method, c.base+path, bytes.NewReader(raw))
	if err != nil {
		c.tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", key)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := c.hc.Do(req)
	if err != nil {
		c.tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{res.StatusCode, res.Header, b}
}

// vendorCaller signs in a new vendor account owning a new profile in city.
func vendorCaller(tb testing.TB, svc *service, city, name string) (caller, Vendor) {
	tb.Helper()
	c := aVendor(tb, svc)
	return c, addOwnedVendor(tb, svc.Store, city, name, c.P.AccountID)
}

func TestApplicationsHTTP(t *testing.T) {
	svc := startService(t, applyNow)
	s := svc.Store
	day := addMarketDay(t, s, "ghent", fixtureDate, "A1", "A2", "A3") // auto_accept
	review := addReviewDay(t, s, "ghent", fixtureDate, "B1", "B2")
	mgr, admin := managerOf(t, svc, "ghent"), adminOf(t, svc)
	apply := func(c caller, dayID, vendorID, pitch string) Application {
		t.Helper()
		var a Application
		body := map[string]string{"vendor_id": vendorID}
		if pitch != "" {
			body["pitch"] = pitch
		}
		c.must(http.StatusCreated, "POST", "/market-days/"+dayID+"/applications", body, &a)
		return a
	}

	t.Run("apply with an Idempotency-Key: a retry replays, another body is refused", func(t *testing.T) {
		c, v := vendorCaller(t, svc, "ghent", "Idem")
		body := map[string]string{"vendor_id": v.ID, "pitch": "A3"}
		first := c.sendKey("POST", "/market-days/"+day.ID+"/applications", body, "key-1")
		again := c.sendKey("POST", "/market-days/"+day.ID+"/applications", body, "key-1")
		if first.Status != 201 || again.Status != 201 || !bytes.Equal(first.Body, again.Body) ||
			again.Header.Get("Idempotent-Replayed") != "true" || again.Header.Get("Location") != first.Header.Get("Location") {
			t.Fatalf("first %d %s, retry %d %v %s: want the first 201 replayed", first.Status, first.Body, again.Status, again.Header, again.Body)
		}
		wantProblem(t, c.sendKey("POST", "/market-days/"+day.ID+"/applications", map[string]string{"vendor_id": v.ID}, "key-1"),
			http.StatusUnprocessableEntity, "Idempotency-Key")
		wantProblem(t, c.send("POST", "/market-days/"+day.ID+"/applications", body), http.StatusConflict, "")
		if n := count(t, s, `SELECT count(*) FROM applications WHERE vendor_id = $1`, v.ID); n != 1 {
			t.Errorf("%d applications, want 1", n)
		}
		var a Application
		json.Unmarshal(first.Body, &a)
		c.must(http.StatusOK, "POST", "/applications/"+a.ID+"/withdraw", map[string]string{"reason": "wrong day"}, nil)
	})

	t.Run("20 concurrent retries with one key make one application", func(t *testing.T) {
		c, v := vendorCaller(t, svc, "ghent", "Impatient")
		body := map[string]string{"vendor_id": v.ID}
		var wg sync.WaitGroup
		statuses := make([]int, 20)
		for i := range statuses {
			wg.Go(func() {
				statuses[i] = c.sendKey("POST", "/market-days/"+review.ID+"/applications", body, "same").Status
			})
		}
		wg.Wait()
		created := 0
		for _, st := range statuses {
			switch st {
			case http.StatusCreated:
				created++
			case http.StatusConflict:
			default:
				t.Errorf("a retry got %d, want 201 or 409", st)
			}
		}
		if created == 0 {
			t.Error("no retry got the 201")
		}
		if n := count(t, s, `SELECT count(*) FROM applications WHERE vendor_id = $1`, v.ID); n != 1 {
			t.Errorf("%d applications, want 1", n)
		}
		if n := count(t, s, `SELECT count(*) FROM outbox WHERE type = $1 AND convert_from(data, 'UTF8')::jsonb->>'vendor_id' = $2`, contract.TypeApplicationSubmitted, v.ID); n != 1 {
			t.Errorf("%d application.submitted events, want 1", n)
		}
	})

	t.Run("the waitlist, moves and offers through the API", func(t *testing.T) {
		c1, v1 := vendorCaller(t, svc, "ghent", "One")
		c2, v2 := vendorCaller(t, svc, "ghent", "Two")
		c4, v4 := vendorCaller(t, svc, "ghent", "Four")
		c5, v5 := vendorCaller(t, svc, "ghent", "Five")
		d := addMarketDay(t, s, "ghent", fixtureDate, "A1", "A2", "A3")
		a1 := apply(c1, d.ID, v1.ID, "A1")
		a2 := apply(c2, d.ID, v2.ID, "")
		var moved Application
		mgr.must(http.StatusOK, "POST", "/applications/"+a2.ID+"/move", map[string]string{"pitch": "A3"}, &moved)
		wantStatus(t, moved, statusAccepted, "A3")
		_, v3 := vendorCaller(t, svc, "ghent", "Three")
		a3 := apply(admin, d.ID, v3.ID, "")
		wantStatus(t, a3, statusAccepted, "A2")
		a4, a5 := apply(c4, d.ID, v4.ID, ""), apply(c5, d.ID, v5.ID, "")
		wantStatus(t, a5, statusWaitlisted, "")
		if a5.WaitlistPosition != 2 {
			t.Errorf("waitlist_position = %d, want 2", a5.WaitlistPosition)
		}
		c1.must(http.StatusOK, "POST", "/applications/"+a1.ID+"/withdraw", nil, nil)
		var offer Application
		c4.must(http.StatusOK, "GET", "/applications/"+a4.ID, nil, &offer)
		wantStatus(t, offer, statusOffered, "A1")
		c4.must(http.StatusOK, "POST", "/applications/"+a4.ID+"/offer/decline", nil, nil)
		var took Application
		c5.must(http.StatusOK, "POST", "/applications/"+a5.ID+"/offer/accept", map[string]any{}, &took)
		wantStatus(t, took, statusAccepted, "A1")
		var rejected Application
		mgr.must(http.StatusOK, "POST", "/applications/"+a3.ID+"/reject", map[string]string{"reason": "no permit"}, &rejected)
		if rejected.Status != statusRejected || rejected.Reason != "no permit" {
			t.Errorf("rejected = %+v", rejected)
		}
		ids := walk(t, mgr, "/market-days/"+d.ID+"/applications?limit=2", "id")
		wantOnce(t, ids, []string{a1.ID, a2.ID, a3.ID, a4.ID, a5.ID})
		accepted := walk(t, mgr, "/market-days/"+d.ID+"/applications?status=accepted&limit=1", "id")
		wantOnce(t, accepted, []string{a2.ID, a5.ID})
		wantProblem(t, mgr.send("GET", "/market-days/"+d.ID+"/applications?status=bogus", nil), http.StatusUnprocessableEntity, "status")
		var md MarketDay
		anonymous(t, svc).must(http.StatusOK, "GET", "/market-days/"+d.ID, nil, &md)
		if len(md.Stalls) != 2 || md.Stalls[0].Pitch != "A1" || md.Stalls[0].LiveState != liveExpected {
			t.Errorf("stalls = %+v, want A1 and A3 expected", md.Stalls)
		}
	})

	t.Run("review, then the live stall", func(t *testing.T) {
		c, v := vendorCaller(t, svc, "ghent", "Live")
		a := apply(c, review.ID, v.ID, "B2")
		wantStatus(t, a, statusPending, "")
		mgr.must(http.StatusOK, "POST", "/applications/"+a.ID+"/waitlist", nil, nil)
		var acc Application
		mgr.must(http.StatusOK, "POST", "/applications/"+a.ID+"/accept", map[string]string{"pitch": "B1"}, &acc)
		wantStatus(t, acc, statusAccepted, "B1")
		wantProblem(t, c.send("POST", "/applications/"+a.ID+"/check-in", nil), http.StatusConflict, "")
		mustExec(t, s, `UPDATE market_days SET status = 'open' WHERE id = $1`, review.ID)
		var st Stall
		c.must(http.StatusOK, "POST", "/applications/"+a.ID+"/check-in", nil, &st)
		if st.LiveState != liveOpen {
			t.Errorf("stall = %+v", st)
		}
		c.must(http.StatusCreated, "POST", "/applications/"+a.ID+"/status-posts", map[string]string{"text": "Fresh bread until noon"}, &st)
		if res := c.send("POST", "/applications/"+a.ID+"/status-posts", map[string]string{"text": "x"}); res.Status != http.StatusTooManyRequests {
			t.Errorf("a second post at once = %d, want 429", res.Status)
		}
		var md MarketDay
		anonymous(t, svc).must(http.StatusOK, "GET", "/market-days/"+review.ID, nil, &md)
		if len(md.Stalls) != 1 || md.Stalls[0].StatusText != "Fresh bread until noon" || md.Stalls[0].CheckedInAt == nil {
			t.Errorf("the public market day's stalls = %+v", md.Stalls)
		}
		var out Stall
		c.must(http.StatusOK, "POST", "/applications/"+a.ID+"/check-out", nil, &out)
		if out.LiveState != liveClosed || out.StatusText != "" {
			t.Errorf("stall = %+v", out)
		}
		var mine struct{ Items []Application }
		c.must(http.StatusOK, "GET", "/vendors/"+v.ID+"/applications?status=accepted&from="+fixtureDate+"&to="+fixtureDate, nil, &mine)
		if len(mine.Items) != 1 || mine.Items[0].ID != a.ID || mine.Items[0].LiveState != liveClosed {
			t.Errorf("vendor's applications = %+v", mine.Items)
		}
	})

	t.Run("batches: apply for dates, read, list, withdraw", func(t *testing.T) {
		c, v := vendorCaller(t, svc, "ghent", "Batcher")
		var b Batch
		c.must(http.StatusCreated, "POST", "/markets/"+review.MarketID+"/applications",
			map[string]any{"vendor_id": v.ID, "dates": []string{"2026-06-06", fixtureDate}, "note": "every week"}, &b)
		if len(b.Items) != 1 || b.Items[0].MarketDayID != review.ID || b.Items[0].BatchID != b.ID ||
			len(b.UpcomingDates) != 1 || b.UpcomingDates[0] != "2026-06-06" || b.Status != batchActive {
			t.Errorf("batch = %+v", b)
		}
		wantProblem(t, c.send("POST", "/markets/"+review.MarketID+"/applications",
			map[string]any{"vendor_id": v.ID, "dates": []string{"2026-05-01"}}), http.StatusUnprocessableEntity, "dates[0]")
		var again Batch
		c.must(http.StatusCreated, "POST", "/markets/"+review.MarketID+"/applications", map[string]any{"vendor_id": v.ID, "season": true}, &again)
		if len(again.Skipped) != 1 || again.Skipped[0].Reason != "already_applied" || again.Skipped[0].ApplicationID != b.Items[0].ID {
			t.Errorf("season batch skipped %+v, want the day already applied for", again.Skipped)
		}
		c.must(http.StatusOK, "GET", "/application-batches/"+b.ID, nil, nil)
		mgr.must(http.StatusOK, "GET", "/application-batches/"+b.ID, nil, nil)
		ids := walk(t, c, "/vendors/"+v.ID+"/application-batches?limit=1", "id")
		wantOnce(t, ids, []string{b.ID, again.ID})
		var w Batch
		c.must(http.StatusOK, "POST", "/application-batches/"+b.ID+"/withdraw", nil, &w)
		if w.Status != batchWithdrawn || len(w.Items) != 1 || w.Items[0].Status != statusWithdrawn {
			t.Errorf("withdrawn batch = %+v", w)
		}
		wantProblem(t, c.send("POST", "/application-batches/"+b.ID+"/withdraw", nil), http.StatusConflict, "")
		active := walk(t, c, "/vendors/"+v.ID+"/application-batches?status=active", "id")
		wantOnce(t, active, []string{again.ID})
	})

	t.Run("who may do what", func(t *testing.T) {
		owner, v := vendorCaller(t, svc, "ghent", "Owned")
		a := apply(owner, review.ID, v.ID, "")
		var b Batch
		owner.must(http.StatusCreated, "POST", "/markets/"+day.MarketID+"/applications", map[string]any{"vendor_id": v.ID, "season": true}, &b)
		other, _ := vendorCaller(t, svc, "ghent", "Other")
		bologna := managerOf(t, svc, "bologna")
		anon := anonymous(t, svc)
		app, batch := "/applications/"+a.ID, "/application-batches/"+b.ID
		reason, pitch := map[string]string{"reason": "x"}, map[string]string{"pitch": "B2"}
		type req struct {
			method, path string
			body         any
		}
		tests := []struct {
			req
			want map[string]int // caller → status
		}{
			{req{"GET", app, nil}, map[string]int{"anon": 401, "other": 404, "bologna": 404}},
			{req{"POST", app + "/withdraw", nil}, map[string]int{"anon": 401, "other": 404, "bologna": 404, "manager": 403}},
			{req{"POST", app + "/accept", nil}, map[string]int{"anon": 401, "other": 404, "bologna": 404, "owner": 403}},
			{req{"POST", app + "/reject", reason}, map[string]int{"anon": 401, "other": 404, "bologna": 404, "owner": 403}},
			{req{"POST", app + "/waitlist", nil}, map[string]int{"anon": 401, "other": 404, "bologna": 404, "owner": 403}},
			{req{"POST", app + "/move", pitch}, map[string]int{"anon": 401, "other": 404, "bologna": 404, "owner": 403}},
			{req{"POST", app + "/offer/accept", nil}, map[string]int{"anon": 401, "other": 404, "bologna": 404, "manager": 403}},
			{req{"POST", app + "/offer/decline", nil}, map[string]int{"anon": 401, "other": 404, "bologna": 404, "manager": 403}},
			{req{"POST", app + "/check-in", nil}, map[string]int{"anon": 401, "other": 404, "bologna": 404}},
			{req{"POST", app + "/status-posts", map[string]string{"text": "hi"}}, map[string]int{"anon": 401, "other": 404, "bologna": 404}},
			{req{"POST", app + "/check-out", nil}, map[string]int{"anon": 401, "other": 404, "bologna": 404}},
			{req{"GET", "/vendors/" + v.ID + "/applications", nil}, map[string]int{"anon": 401, "other": 404, "bologna": 404}},
			{req{"GET", "/vendors/" + v.ID + "/application-batches", nil}, map[string]int{"anon": 401, "other": 404, "bologna": 404}},
			{req{"GET", "/market-days/" + review.ID + "/applications", nil}, map[string]int{"anon": 401, "other": 403, "bologna": 403, "owner": 403}},
			{req{"POST", "/market-days/" + day.ID + "/applications", map[string]string{"vendor_id": v.ID}},
				map[string]int{"anon": 401, "other": 403, "bologna": 403}},
			{req{"POST", "/markets/" + day.MarketID + "/applications", map[string]any{"vendor_id": v.ID, "season": true}},
				map[string]int{"anon": 401, "other": 403, "bologna": 403}},
			{req{"GET", batch, nil}, map[string]int{"anon": 401, "other": 404, "bologna": 404}},
			{req{"POST", batch + "/withdraw", nil}, map[string]int{"anon": 401, "other": 404, "bologna": 404, "manager": 403}},
		}
		callers := map[string]caller{"anon": anon, "other": other, "bologna": bologna, "manager": mgr, "owner": owner}
		for _, tt := range tests {
			for who, status := range tt.want {
				res := callers[who].send(tt.method, tt.path, tt.body)
				if res.Status != status {
					t.Errorf("%s %s by %s = %d, want %d: %s", tt.method, tt.path, who, res.Status, status, truncate(res.Body))
				}
			}
		}
		if got := reload(t, s, a.ID); got.Status != statusPending || got.Version != 1 {
			t.Errorf("after the refused requests the application is %s version %d, want pending version 1", got.Status, got.Version)
		}
		// The owner, the city's manager and an admin may read it.
		for _, c := range []caller{owner, mgr, admin} {
			c.must(http.StatusOK, "GET", app, nil, nil)
			c.must(http.StatusOK, "GET", "/vendors/"+v.ID+"/applications", nil, nil)
		}
	})
}

func TestBatchesAndGeneration(t *testing.T) {
	ctx := context.Background()
	s := newStore(t)
	day := addMarketDay(t, s, "ghent", fixtureDate, "A1") // every day from 2026-01-01, auto_accept
	mustExec(t, s, `UPDATE markets SET season_end = '2026-06-10' WHERE id = $1`, day.MarketID)
	owner := auth.Principal{AccountID: "acc-1"}
	v := addOwnedVendor(t, s, "ghent", "Seasonal", "acc-1")
	wantField(t, (&NewBatch{VendorID: v.ID, Season: new(bool)}).Validate(), "season")
	yes := true
	b, err := s.ApplyBatch(ctx, owner, day.MarketID, NewBatch{VendorID: v.ID, Season: &yes, Pitch: "A1"}, applyNow)
	if err != nil {
		t.Fatal(err)
	}
	// Today (1 June) to the season's end (10 June), less the fixture day that exists.
	if len(b.Items) != 1 || len(b.UpcomingDates) != 9 {
		t.Errorf("batch has %d items and %d upcoming dates (%v), want 1 and 9", len(b.Items), len(b.UpcomingDates), b.UpcomingDates)
	}
	if _, err := s.GenerateMarketDays(ctx, applyNow, 4*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	got, err := s.Batch(ctx, owner, b.ID, applyNow)
	if err != nil {
		t.Fatal(err)
	}
	// 1–4 June were generated (5 June existed): each got its application, accepted on A1.
	if len(got.Items) != 5 || len(got.UpcomingDates) != 5 {
		t.Fatalf("after generating: %d items, %d upcoming; want 5 and 5", len(got.Items), len(got.UpcomingDates))
	}
	for _, a := range got.Items {
		if a.Status != statusAccepted || a.Pitch != "A1" || a.BatchID != b.ID {
			t.Errorf("generated application %s on %s: %s on %q", a.ID, a.MarketDay.Date, a.Status, a.Pitch)
		}
	}
	if _, err := s.WithdrawBatch(ctx, owner, b.ID, applyNow); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GenerateMarketDays(ctx, applyNow, 8*24*time.Hour); err != nil {
		t.Fatal(err)
	}
	if n := count(t, s, `SELECT count(*) FROM applications WHERE batch_id = $1`, b.ID); n != 5 {
		t.Errorf("a withdrawn batch applied for new days: %d applications, want 5", n)
	}
	if n := count(t, s, `SELECT count(*) FROM applications WHERE batch_id = $1 AND status = 'withdrawn'`, b.ID); n != 5 {
		t.Errorf("%d applications withdrawn with the batch, want 5", n)
	}
}
