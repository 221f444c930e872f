package listings

import (
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/localeurope/piazza/services/contract"
)

// apiNow is Friday 1 May 2026, 10:00 in Ghent.
var apiNow = time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)

func newPlaceBody() map[string]any {
	return map[string]any{"name": "Sint-Baafsplein", "lat": 51.053, "lon": 3.725, "plan_w": 20, "plan_h": 10,
		"pitches": []map[string]any{
			{"code": "A1", "x": 1, "y": 1, "w": 3, "h": 3, "power": true},
			{"code": "A2", "x": 4, "y": 1, "w": 3, "h": 3}, // touches A1: fine
		}}
}

func TestPlacesAPI(t *testing.T) {
	svc := startService(t, apiNow)
	anon, ghent, bologna, admin, vendor := anonymous(t, svc), managerOf(t, svc, "ghent"), managerOf(t, svc, "bologna"),
		adminOf(t, svc), aVendor(t, svc)

	var place Square
	t.Run("a manager creates a square with its plan, announced in the same transaction", func(t *testing.T) {
		res := ghent.must(http.StatusCreated, "POST", "/cities/ghent/places", newPlaceBody(), &place)
		if place.City != "ghent" || len(place.Pitches) != 2 || place.Version != 1 || place.Pitches[0].Code != "A1" {
			t.Fatalf("place = %+v", place)
		}
		if loc := res.Header.Get("Location"); loc != "/api/v1/listings/places/"+place.ID {
			t.Errorf("Location = %q", loc)
		}
		if n := outboxCount(t, svc.Store, contract.TypePlaceUpserted, "places/"+place.ID); n != 1 {
			t.Errorf("place.upserted rows = %d, want 1", n)
		}
	})

	t.Run("who may create a square", func(t *testing.T) {
		wantProblem(t, anon.send("POST", "/cities/ghent/places", newPlaceBody()), http.StatusUnauthorized, "")
		wantProblem(t, bologna.send("POST", "/cities/ghent/places", newPlaceBody()), http.StatusForbidden, "")
		wantProblem(t, vendor.send("POST", "/cities/ghent/places", newPlaceBody()), http.StatusForbidden, "")
		wantProblem(t, ghent.send("POST", "/cities/atlantis/places", newPlaceBody()), http.StatusNotFound, "")
		admin.must(http.StatusCreated, "POST", "/cities/bologna/places", newPlaceBody(), nil)
	})

	t.Run("an invalid plan is refused field by field", func(t *testing.T) {
		for _, tt := range []struct {
			name  string
			pitch map[string]any
			field string
		}{
			{"overlapping pitches", map[string]any{"code": "B1", "x": 2, "y": 2, "w": 3, "h": 3}, "pitches[2].x"},
			{"a pitch off the plan", map[string]any{"code": "B1", "x": 18, "y": 1, "w": 3, "h": 3}, "pitches[2].x"},
			{"a repeated code", map[string]any{"code": "A1", "x": 10, "y": 1, "w": 3, "h": 3}, "pitches[2].code"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				body := newPlaceBody()
				body["pitches"] = append(body["pitches"].([]map[string]any), tt.pitch)
				wantProblem(t, ghent.send("POST", "/cities/ghent/places", body), http.StatusUnprocessableEntity, tt.field)
			})
		}
		wantProblem(t, ghent.send("POST", "/cities/ghent/places", map[string]any{"name": " ", "lat": 91, "lon": 0, "plan_w": 5, "plan_h": 5}),
			http.StatusUnprocessableEntity, "lat")
	})

	t.Run("anyone reads a square; a malformed or unknown id is not found", func(t *testing.T) {
		var got Square
		anon.must(http.StatusOK, "GET", "/places/"+place.ID, nil, &got)
		if got.ID != place.ID || len(got.Pitches) != 2 {
			t.Fatalf("place = %+v", got)
		}
		wantProblem(t, anon.send("GET", "/places/"+uuid.NewString(), nil), http.StatusNotFound, "")
		wantProblem(t, anon.send("GET", "/places/nope", nil), http.StatusNotFound, "")
	})

	t.Run("the city's squares are listed a page at a time, each once", func(t *testing.T) {
		var want []string
		for i := 0; i < 3; i++ {
			var p Square
			ghent.must(http.StatusCreated, "POST", "/cities/ghent/places", newPlaceBody(), &p)
			want = append(want, p.ID)
		}
		all := walk(t, anon, "/cities/ghent/places?limit=100", "id")
		paged := walk(t, anon, "/cities/ghent/places?limit=2", "id")
		wantOnce(t, paged, all)
		if len(all) != 2+1+3 { // two demo squares, one above, three here
			t.Errorf("listed %d squares, want 6", len(all))
		}
		wantProblem(t, anon.send("GET", "/cities/ghent/places?cursor=bm9wZQ", nil), http.StatusUnprocessableEntity, "cursor")
		var first pageOf[Square]
		anon.must(http.StatusOK, "GET", "/cities/ghent/places?limit=1", nil, &first)
		wantProblem(t, anon.send("GET", "/cities/bologna/places?cursor="+*first.NextCursor, nil), http.StatusUnprocessableEntity, "cursor")
		wantProblem(t, anon.send("GET", "/cities/atlantis/places", nil), http.StatusNotFound, "")
	})

	t.Run("a manager updates a square with optimistic concurrency", func(t *testing.T) {
		var got Square
		ghent.must(http.StatusOK, "PATCH", "/places/"+place.ID, map[string]any{"name": "Sint-Baafsplein (noord)", "version": 1}, &got)
		if got.Name != "Sint-Baafsplein (noord)" || got.Version != 2 || got.UpdatedAt == nil {
			t.Fatalf("place = %+v", got)
		}
		wantProblem(t, ghent.send("PATCH", "/places/"+place.ID, map[string]any{"name": "X", "version": 1}), http.StatusConflict, "")
		wantProblem(t, ghent.send("PATCH", "/places/"+place.ID, map[string]any{"plan_w": 5}), http.StatusUnprocessableEntity, "plan_w")
		wantProblem(t, anon.send("PATCH", "/places/"+place.ID, map[string]any{"name": "X"}), http.StatusUnauthorized, "")
		wantProblem(t, bologna.send("PATCH", "/places/"+place.ID, map[string]any{"name": "X"}), http.StatusForbidden, "")
		wantProblem(t, vendor.send("PATCH", "/places/"+place.ID, map[string]any{"name": "X"}), http.StatusForbidden, "")
		wantProblem(t, ghent.send("PATCH", "/places/"+uuid.NewString(), map[string]any{"name": "X"}), http.StatusNotFound, "")
		if n := outboxCount(t, svc.Store, contract.TypePlaceUpserted, "places/"+place.ID); n != 2 {
			t.Errorf("place.upserted rows = %d, want 2", n)
		}
	})

	t.Run("pitches are added, edited and removed by the city's managers", func(t *testing.T) {
		var p Pitch
		res := ghent.must(http.StatusCreated, "POST", "/places/"+place.ID+"/pitches", map[string]any{"code": "B1", "x": 10, "y": 5, "w": 2, "h": 2}, &p)
		if p.Code != "B1" || res.Header.Get("Location") == "" {
			t.Fatalf("pitch = %+v", p)
		}
		wantProblem(t, ghent.send("POST", "/places/"+place.ID+"/pitches", map[string]any{"code": "B1", "x": 15, "y": 5, "w": 2, "h": 2}), http.StatusConflict, "")
		wantProblem(t, ghent.send("POST", "/places/"+place.ID+"/pitches", map[string]any{"code": "B2", "x": 11, "y": 6, "w": 2, "h": 2}), http.StatusUnprocessableEntity, "x")
		wantProblem(t, bologna.send("POST", "/places/"+place.ID+"/pitches", map[string]any{"code": "B3", "x": 15, "y": 5, "w": 2, "h": 2}), http.StatusForbidden, "")
		wantProblem(t, anon.send("POST", "/places/"+place.ID+"/pitches", map[string]any{"code": "B3", "x": 15, "y": 5, "w": 2, "h": 2}), http.StatusUnauthorized, "")

		ghent.must(http.StatusOK, "PATCH", "/places/"+place.ID+"/pitches/B1", map[string]any{"code": "B9", "water": true}, &p)
		if p.Code != "B9" || !p.Water || p.X != 10 {
			t.Fatalf("pitch = %+v", p)
		}
		wantProblem(t, ghent.send("PATCH", "/places/"+place.ID+"/pitches/B9", map[string]any{"code": "A1"}), http.StatusConflict, "")
		wantProblem(t, ghent.send("PATCH", "/places/"+place.ID+"/pitches/B9", map[string]any{"x": 3, "y": 2}), http.StatusUnprocessableEntity, "x")
		wantProblem(t, ghent.send("PATCH", "/places/"+place.ID+"/pitches/ZZ", map[string]any{"x": 3}), http.StatusNotFound, "")
		wantProblem(t, bologna.send("PATCH", "/places/"+place.ID+"/pitches/B9", map[string]any{"x": 3}), http.StatusForbidden, "")

		ghent.must(http.StatusNoContent, "DELETE", "/places/"+place.ID+"/pitches/B9", nil, nil)
		wantProblem(t, ghent.send("DELETE", "/places/"+place.ID+"/pitches/B9", nil), http.StatusNotFound, "")
		wantProblem(t, bologna.send("DELETE", "/places/"+place.ID+"/pitches/A2", nil), http.StatusForbidden, "")
		wantProblem(t, anon.send("DELETE", "/places/"+place.ID+"/pitches/A2", nil), http.StatusUnauthorized, "")
		var got Square
		anon.must(http.StatusOK, "GET", "/places/"+place.ID, nil, &got)
		if len(got.Pitches) != 2 {
			t.Errorf("pitches = %+v, want A1 and A2", got.Pitches)
		}
		// A removed code can be used again.
		ghent.must(http.StatusCreated, "POST", "/places/"+place.ID+"/pitches", map[string]any{"code": "B9", "x": 10, "y": 5, "w": 2, "h": 2}, nil)
	})

	t.Run("a pitch with a stall on a coming day cannot be removed", func(t *testing.T) {
		s := svc.Store
		day := addMarketDay(t, s, "ghent", "2026-05-02", "P1", "P2")
		var v Vendor
		vendor.must(http.StatusCreated, "POST", "/vendors", map[string]any{"city": "ghent", "name": "Hoeve", "kind": "farmer"}, &v)
		var app struct{ Status, Pitch string }
		vendor.must(http.StatusCreated, "POST", "/market-days/"+day.ID+"/applications", map[string]any{"vendor_id": v.ID, "pitch": "P1"}, &app)
		if app.Status != "accepted" || app.Pitch != "P1" {
			t.Fatalf("application = %+v, want accepted on P1", app)
		}
		wantProblem(t, ghent.send("DELETE", "/places/"+day.PlaceID+"/pitches/P1", nil), http.StatusConflict, "")
		ghent.must(http.StatusNoContent, "DELETE", "/places/"+day.PlaceID+"/pitches/P2", nil, nil)
		// The stall keeps its pitch on the market day once the pitch is renamed.
		ghent.must(http.StatusOK, "PATCH", "/places/"+day.PlaceID+"/pitches/P1", map[string]any{"code": "Q1"}, nil)
		var d MarketDay
		anon.must(http.StatusOK, "GET", "/market-days/"+day.ID, nil, &d)
		if len(d.Stalls) != 1 || d.Stalls[0].Pitch != "Q1" || len(d.Pitches) != 1 {
			t.Errorf("market day stalls %+v pitches %+v, want the stall on Q1, the only pitch", d.Stalls, d.Pitches)
		}
	})
}
