package listings

import (
	"net/http"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/localeurope/piazza/pkg/auth"
	"github.com/localeurope/piazza/services/contract"
)

func newVendorBody(name string) map[string]any {
	return map[string]any{
		"city": "ghent", "name": name, "kind": "farmer", "categories": []string{"cheese", "dairy"},
		"description": "Raw-milk cheese from our own cows in Lovendegem.", "languages": []string{"nl", "en", "fr"},
		"photo_url": "https://images.example/hoeve.jpg",
		"contact":   map[string]any{"email": "info@hoeve.example", "phone": "+32 9 123 45 67", "website": "https://hoeve.example"},
	}
}

func TestVendorsAPI(t *testing.T) {
	svc := startService(t, apiNow)
	anon, owner, other := anonymous(t, svc), aVendor(t, svc), aVendor(t, svc)
	ghent, bologna, admin := managerOf(t, svc, "ghent"), managerOf(t, svc, "bologna"), adminOf(t, svc)

	var v Vendor
	t.Run("an account with the vendor role creates a profile it owns", func(t *testing.T) {
		res := owner.must(http.StatusCreated, "POST", "/vendors", newVendorBody("Hoeve De Linde"), &v)
		if v.Contact == nil || v.Contact.Email != "info@hoeve.example" || v.Version != 1 || len(v.Languages) != 3 {
			t.Fatalf("vendor = %+v", v)
		}
		if res.Header.Get("Location") != "/api/v1/listings/vendors/"+v.ID {
			t.Errorf("Location = %q", res.Header.Get("Location"))
		}
		var data string
		if err := svc.Store.pool.QueryRow(t.Context(), `SELECT convert_from(data, 'UTF8') FROM outbox WHERE type = $1 AND ce_subject = $2`,
			contract.TypeVendorUpserted, "vendors/"+v.ID).Scan(&data); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(data, "hoeve.example\"") || strings.Contains(data, "info@") || !strings.Contains(data, "Hoeve De Linde") {
			t.Errorf("vendor.upserted = %s, want the public profile without contact", data)
		}
		// The old body is still valid.
		owner.must(http.StatusCreated, "POST", "/vendors", map[string]any{"city": "ghent", "name": "Kaas", "kind": "food", "description": ""}, nil)
	})

	t.Run("who may create a profile", func(t *testing.T) {
		wantProblem(t, anon.send("POST", "/vendors", newVendorBody("X")), http.StatusUnauthorized, "")
		wantProblem(t, ghent.send("POST", "/vendors", newVendorBody("X")), http.StatusForbidden, "")
		wantProblem(t, owner.send("POST", "/vendors", map[string]any{"city": "atlantis", "name": "X", "kind": "food"}), http.StatusUnprocessableEntity, "city")
		bad := newVendorBody("X")
		bad["contact"] = map[string]any{"email": "not-an-address"}
		wantProblem(t, owner.send("POST", "/vendors", bad), http.StatusUnprocessableEntity, "contact.email")
		bad = newVendorBody("X")
		bad["photo_url"] = "http://insecure.example/x.jpg"
		wantProblem(t, owner.send("POST", "/vendors", bad), http.StatusUnprocessableEntity, "photo_url")
	})

	t.Run("the contact is shown to the owner, the city's managers and admins only", func(t *testing.T) {
		for _, tt := range []struct {
			who         string
			c           caller
			seesContact bool
		}{
			{"anonymous", anon, false}, {"another vendor", other, false}, {"a Bologna manager", bologna, false},
			{"the owner", owner, true}, {"a Ghent manager", ghent, true}, {"an admin", admin, true},
		} {
			var got Vendor
			tt.c.must(http.StatusOK, "GET", "/vendors/"+v.ID, nil, &got)
			if (got.Contact != nil) != tt.seesContact {
				t.Errorf("%s sees contact %+v, want seen=%v", tt.who, got.Contact, tt.seesContact)
			}
		}
		wantProblem(t, anon.send("GET", "/vendors/"+uuid.NewString(), nil), http.StatusNotFound, "")
		wantProblem(t, anon.send("GET", "/vendors/x", nil), http.StatusNotFound, "")
	})

	t.Run("the owner or an admin changes a profile; nobody else", func(t *testing.T) {
		var got Vendor
		owner.must(http.StatusOK, "PATCH", "/vendors/"+v.ID, map[string]any{"languages": []string{"nl", "de"}, "photo_url": "", "version": 1}, &got)
		if got.Version != 2 || got.PhotoURL != "" || len(got.Languages) != 2 || got.Contact == nil || got.Name != "Hoeve De Linde" {
			t.Fatalf("vendor = %+v", got)
		}
		wantProblem(t, owner.send("PATCH", "/vendors/"+v.ID, map[string]any{"name": "X", "version": 1}), http.StatusConflict, "")
		wantProblem(t, other.send("PATCH", "/vendors/"+v.ID, map[string]any{"name": "X"}), http.StatusForbidden, "")
		wantProblem(t, ghent.send("PATCH", "/vendors/"+v.ID, map[string]any{"name": "X"}), http.StatusForbidden, "")
		wantProblem(t, anon.send("PATCH", "/vendors/"+v.ID, map[string]any{"name": "X"}), http.StatusUnauthorized, "")
		wantProblem(t, owner.send("PATCH", "/vendors/"+uuid.NewString(), map[string]any{"name": "X"}), http.StatusNotFound, "")
		wantProblem(t, owner.send("PATCH", "/vendors/"+v.ID, map[string]any{"kind": "wizard"}), http.StatusUnprocessableEntity, "kind")
		wantProblem(t, owner.send("PATCH", "/vendors/"+v.ID, map[string]any{"city": "bologna"}), http.StatusUnprocessableEntity, "city")
		got = Vendor{}
		admin.must(http.StatusOK, "PATCH", "/vendors/"+v.ID, map[string]any{"contact": map[string]any{"phone": "+32 9 765 43 21"}}, &got)
		if got.Contact.Phone != "+32 9 765 43 21" || got.Contact.Email != "" || got.Version != 3 {
			t.Errorf("vendor = %+v %+v, want the contact replaced whole", got, *got.Contact)
		}
		if n := outboxCount(t, svc.Store, contract.TypeVendorUpserted, "vendors/"+v.ID); n != 3 {
			t.Errorf("vendor.upserted rows = %d, want 3", n)
		}
	})

	t.Run("an account lists its own profiles", func(t *testing.T) {
		var more []string
		for i := 0; i < 3; i++ {
			var x Vendor
			owner.must(http.StatusCreated, "POST", "/vendors", newVendorBody("Hoeve "+string(rune('A'+i))), &x)
			more = append(more, x.ID)
		}
		mine := walk(t, owner, "/vendors/mine?limit=2", "id")
		if len(mine) != 5 || mine[0] != v.ID {
			t.Errorf("mine = %v, want 5 oldest first", mine)
		}
		if got := walk(t, other, "/vendors/mine", "id"); len(got) != 0 {
			t.Errorf("another vendor's profiles = %v, want none", got)
		}
		if got := walk(t, signedIn(t, svc, auth.Principal{Roles: []string{auth.RoleManager}, Cities: []string{"ghent"}}), "/vendors/mine", "id"); len(got) != 0 {
			t.Errorf("a manager's profiles = %v", got)
		}
		wantProblem(t, anon.send("GET", "/vendors/mine", nil), http.StatusUnauthorized, "")
	})

	t.Run("a city's vendors are public profiles, a page at a time", func(t *testing.T) {
		all := walk(t, anon, "/cities/ghent/vendors?limit=100", "id")
		wantOnce(t, walk(t, anon, "/cities/ghent/vendors?limit=2", "id"), all)
		if len(all) != 5 {
			t.Errorf("%d Ghent vendors, want 5", len(all))
		}
		var pg pageOf[Vendor]
		ghent.must(http.StatusOK, "GET", "/cities/ghent/vendors", nil, &pg)
		for _, x := range pg.Items {
			if x.Contact != nil {
				t.Errorf("%s listed with contact", x.Name)
			}
		}
		if got := walk(t, anon, "/cities/ghent/vendors?kind=food", "id"); len(got) != 1 {
			t.Errorf("food vendors = %v, want 1", got)
		}
		if got := walk(t, anon, "/cities/ghent/vendors?category=cheese", "id"); len(got) != 4 {
			t.Errorf("cheese vendors = %v, want 4", got)
		}
		if got := walk(t, anon, "/cities/bologna/vendors", "id"); len(got) != 0 {
			t.Errorf("Bologna vendors = %v, want none", got)
		}
		wantProblem(t, anon.send("GET", "/cities/ghent/vendors?kind=wizard", nil), http.StatusUnprocessableEntity, "kind")
		wantProblem(t, anon.send("GET", "/cities/atlantis/vendors", nil), http.StatusNotFound, "")
	})
}

func TestCitiesAPI(t *testing.T) {
	svc := startService(t, apiNow)
	anon := anonymous(t, svc)
	mustExec(t, svc.Store, `INSERT INTO cities (slug, name, country, timezone, languages) VALUES ('lyon', 'Lyon', 'FR', 'Europe/Paris', '{fr}')`)
	all := walk(t, anon, "/cities", "slug")
	if strings.Join(all, ",") != "bologna,ghent,lyon" {
		t.Errorf("cities = %v, want by slug", all)
	}
	wantOnce(t, walk(t, anon, "/cities?limit=1", "slug"), all)
	wantProblem(t, anon.send("GET", "/cities?cursor=xyz", nil), http.StatusUnprocessableEntity, "cursor")
	wantProblem(t, anon.send("GET", "/cities?limit=0", nil), http.StatusUnprocessableEntity, "limit")
}
