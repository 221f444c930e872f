package listings

import (
	"encoding/json"
	"net/http"
	"sync"
	"testing"

	"github.com/google/uuid"
	"github.com/localeurope/piazza/services/contract"
)

func TestMarketDaysAPI(t *testing.T) {
	svc := startService(t, apiNow) // Friday 1 May 2026, 10:00 in Ghent
	s := svc.Store
	anon, ghent, bologna, admin, vendor := anonymous(t, svc), managerOf(t, svc, "ghent"), managerOf(t, svc, "bologna"),
		adminOf(t, svc), aVendor(t, svc)

	t.Run("a range of days is walked a page at a time, each day once", func(t *testing.T) {
		path := "/cities/ghent/market-days?from=2026-05-01&to=2026-05-14"
		all := walk(t, anon, path+"&limit=100", "id")
		if len(all) < 20 {
			t.Fatalf("%d days in two weeks of Ghent's daily markets, want more", len(all))
		}
		wantOnce(t, walk(t, anon, path+"&limit=3", "id"), all)
		var first struct {
			NextCursor *string `json:"next_cursor"`
			From, To   string
		}
		anon.must(http.StatusOK, "GET", path+"&limit=3", nil, &first)
		if first.From != "2026-05-01" || first.NextCursor == nil {
			t.Fatalf("first page = %+v", first)
		}
		wantProblem(t, anon.send("GET", path+"&cursor=%21%21", nil), http.StatusUnprocessableEntity, "cursor")
		wantProblem(t, anon.send("GET", "/cities/ghent/market-days?from=2026-05-02&to=2026-05-14&cursor="+*first.NextCursor, nil),
			http.StatusUnprocessableEntity, "cursor")
		wantProblem(t, anon.send("GET", path+"&status=open,nope", nil), http.StatusUnprocessableEntity, "status")
		wantProblem(t, anon.send("GET", path+"&limit=101", nil), http.StatusUnprocessableEntity, "limit")
	})

	t.Run("a manager opens today's day, then closes it; each step only from the right state", func(t *testing.T) {
		day := addMarketDay(t, s, "ghent", "2026-05-01", "A1")
		var d MarketDay
		ghent.must(http.StatusOK, "POST", "/market-days/"+day.ID+"/open", nil, &d)
		if d.Status != "open" || d.OpenedAt == nil || d.Version != 2 {
			t.Fatalf("opened day = %+v", d)
		}
		wantProblem(t, ghent.send("POST", "/market-days/"+day.ID+"/open", "{}"), http.StatusConflict, "")
		ghent.must(http.StatusOK, "POST", "/market-days/"+day.ID+"/close", "{}", &d)
		if d.Status != "closed" || d.ClosedAt == nil {
			t.Fatalf("closed day = %+v", d)
		}
		wantProblem(t, ghent.send("POST", "/market-days/"+day.ID+"/close", nil), http.StatusConflict, "")
		wantProblem(t, ghent.send("POST", "/market-days/"+day.ID+"/cancel", map[string]any{"reason": "Storm"}), http.StatusConflict, "")
		wantProblem(t, ghent.send("PATCH", "/market-days/"+day.ID, map[string]any{"closes": "12:00"}), http.StatusConflict, "")
		for typ, n := range map[string]int{contract.TypeMarketDayOpened: 1, contract.TypeMarketDayClosed: 1, contract.TypeMarketDayCancelled: 0} {
			if got := outboxCount(t, s, typ, "market-days/"+day.ID); got != n {
				t.Errorf("%s rows = %d, want %d", typ, got, n)
			}
		}
	})

	t.Run("a day opens only on its date", func(t *testing.T) {
		day := addMarketDay(t, s, "ghent", "2026-05-02", "A1")
		wantProblem(t, ghent.send("POST", "/market-days/"+day.ID+"/open", nil), http.StatusConflict, "")
		var d MarketDay
		anon.must(http.StatusOK, "GET", "/market-days/"+day.ID, nil, &d)
		if d.Status != "scheduled" || d.Version != 1 {
			t.Errorf("day = %s v%d, want untouched", d.Status, d.Version)
		}
		wantProblem(t, ghent.send("POST", "/market-days/"+day.ID+"/open", `{"now":true}`), http.StatusUnprocessableEntity, "now")
	})

	t.Run("a manager cancels a day with a reason, announced with it", func(t *testing.T) {
		day := addMarketDay(t, s, "ghent", "2026-05-03", "A1")
		wantProblem(t, ghent.send("POST", "/market-days/"+day.ID+"/cancel", map[string]any{"reason": "  "}), http.StatusUnprocessableEntity, "reason")
		var d MarketDay
		ghent.must(http.StatusOK, "POST", "/market-days/"+day.ID+"/cancel", map[string]any{"reason": "Storm warning; the square is closed."}, &d)
		if d.Status != "cancelled" || d.CancelReason != "Storm warning; the square is closed." || d.CancelledAt == nil {
			t.Fatalf("cancelled day = %+v", d)
		}
		var ev contract.MarketDayV1
		var data []byte
		if err := s.pool.QueryRow(t.Context(), `SELECT data FROM outbox WHERE type = $1 AND ce_subject = $2`,
			contract.TypeMarketDayCancelled, "market-days/"+day.ID).Scan(&data); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(data, &ev); err != nil || ev.Status != "cancelled" || ev.Version != 2 || ev.CancelReason == "" || ev.MarketID != day.MarketID {
			t.Errorf("event = %+v (%v)", ev, err)
		}
		wantProblem(t, ghent.send("POST", "/market-days/"+day.ID+"/open", nil), http.StatusConflict, "")
		wantProblem(t, ghent.send("POST", "/market-days/"+day.ID+"/cancel", map[string]any{"reason": "again"}), http.StatusConflict, "")
	})

	t.Run("a manager changes a day's hours: both while scheduled, closing only while open", func(t *testing.T) {
		day := addMarketDay(t, s, "ghent", "2026-05-01", "A1")
		var d MarketDay
		ghent.must(http.StatusOK, "PATCH", "/market-days/"+day.ID, map[string]any{"opens": "06:30", "closes": "12:00", "version": 1}, &d)
		if d.Opens != "06:30" || d.Closes != "12:00" || !d.HoursChanged || d.Version != 2 || !d.StartsAt.Equal(day.StartsAt.Add(-30*60e9)) {
			t.Fatalf("day = %+v", d)
		}
		wantProblem(t, ghent.send("PATCH", "/market-days/"+day.ID, map[string]any{"closes": "12:30", "version": 1}), http.StatusConflict, "")
		wantProblem(t, ghent.send("PATCH", "/market-days/"+day.ID, map[string]any{"closes": "06:00"}), http.StatusUnprocessableEntity, "closes")
		wantProblem(t, ghent.send("PATCH", "/market-days/"+day.ID, map[string]any{"closes": "25:00"}), http.StatusUnprocessableEntity, "closes")
		ghent.must(http.StatusOK, "POST", "/market-days/"+day.ID+"/open", nil, nil)
		wantProblem(t, ghent.send("PATCH", "/market-days/"+day.ID, map[string]any{"opens": "07:00"}), http.StatusConflict, "")
		ghent.must(http.StatusOK, "PATCH", "/market-days/"+day.ID, map[string]any{"closes": "14:00"}, &d)
		if d.Opens != "06:30" || d.Closes != "14:00" || d.Status != "open" {
			t.Errorf("day = %s %s–%s, want open 06:30–14:00", d.Status, d.Opens, d.Closes)
		}
		if n := outboxCount(t, s, contract.TypeMarketDayHoursChanged, "market-days/"+day.ID); n != 2 {
			t.Errorf("hours_changed rows = %d, want 2", n)
		}
	})

	t.Run("only the city's managers and admins run a day", func(t *testing.T) {
		day := addMarketDay(t, s, "ghent", "2026-05-01", "A1")
		for _, tt := range []struct {
			method, path string
			body         any
		}{
			{"PATCH", "", map[string]any{"closes": "12:00"}},
			{"POST", "/cancel", map[string]any{"reason": "Storm"}},
			{"POST", "/open", nil},
			{"POST", "/close", nil},
		} {
			wantProblem(t, anon.send(tt.method, "/market-days/"+day.ID+tt.path, tt.body), http.StatusUnauthorized, "")
			wantProblem(t, bologna.send(tt.method, "/market-days/"+day.ID+tt.path, tt.body), http.StatusForbidden, "")
			wantProblem(t, vendor.send(tt.method, "/market-days/"+day.ID+tt.path, tt.body), http.StatusForbidden, "")
			wantProblem(t, ghent.send(tt.method, "/market-days/"+uuid.NewString()+tt.path, tt.body), http.StatusNotFound, "")
		}
		admin.must(http.StatusOK, "POST", "/market-days/"+day.ID+"/open", nil, nil)
	})

	t.Run("of concurrent transitions of one day, exactly one wins", func(t *testing.T) {
		race := func(t *testing.T, dayID string, reqs map[string]int) map[string][]int {
			var mu sync.Mutex
			var wg sync.WaitGroup
			got := map[string][]int{}
			for action, n := range reqs {
				for range n {
					wg.Add(1)
					go func() {
						defer wg.Done()
						var body any
						if action == "cancel" {
							body = map[string]any{"reason": "Storm"}
						}
						res := ghent.send("POST", "/market-days/"+dayID+"/"+action, body)
						mu.Lock()
						got[action] = append(got[action], res.Status)
						mu.Unlock()
					}()
				}
			}
			wg.Wait()
			return got
		}
		ok := func(statuses []int) int {
			n := 0
			for _, st := range statuses {
				if st == http.StatusOK {
					n++
				} else if st != http.StatusConflict {
					t.Errorf("status %d, want 200 or 409", st)
				}
			}
			return n
		}

		day := addMarketDay(t, s, "ghent", "2026-05-01", "A1")
		got := race(t, day.ID, map[string]int{"cancel": 10, "open": 10})
		if n := ok(got["cancel"]); n != 1 {
			t.Errorf("%d cancels succeeded, want 1", n)
		}
		if n := ok(got["open"]); n > 1 {
			t.Errorf("%d opens succeeded, want at most 1", n)
		}
		if n := outboxCount(t, s, contract.TypeMarketDayCancelled, "market-days/"+day.ID); n != 1 {
			t.Errorf("cancelled rows = %d, want 1", n)
		}

		day = addMarketDay(t, s, "ghent", "2026-05-01", "A1")
		ghent.must(http.StatusOK, "POST", "/market-days/"+day.ID+"/open", nil, nil)
		got = race(t, day.ID, map[string]int{"cancel": 10, "close": 10})
		if n := ok(got["cancel"]) + ok(got["close"]); n != 1 {
			t.Errorf("%d of the closes and cancels of an open day succeeded, want exactly 1", n)
		}
		ended := outboxCount(t, s, contract.TypeMarketDayCancelled, "market-days/"+day.ID) +
			outboxCount(t, s, contract.TypeMarketDayClosed, "market-days/"+day.ID)
		if ended != 1 {
			t.Errorf("closed+cancelled rows = %d, want 1", ended)
		}
	})
}
