package listings

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/localeurope/piazza/pkg/auth"
	"github.com/localeurope/piazza/pkg/web"
	"github.com/localeurope/piazza/services/contract"
)

// Vendor is an artisan's, farmer's or food vendor's profile. Contact is
// private: only the owner, a manager of the vendor's city and an admin see it.
type Vendor struct {
	ID          string     `json:"id"`
	City        string     `json:"city"`
	Name        string     `json:"name"`
	Kind        string     `json:"kind"`
	Description string     `json:"description"`
	Categories  []string   `json:"categories"`
	Languages   []string   `json:"languages"`
	PhotoURL    string     `json:"photo_url,omitempty"`
	Contact     *Contact   `json:"contact,omitempty"`
	Version     int64      `json:"version"`
	CreatedAt   time.Time  `json:"created_at"`
	UpdatedAt   *time.Time `json:"updated_at,omitempty"`
	// Owner is the account that owns the profile ("" for profiles made
	// before accounts existed: only an admin may change those).
	Owner string `json:"-"`
}

// Contact is how managers reach a vendor.
type Contact struct {
	Email   string `json:"email,omitempty"`
	Phone   string `json:"phone,omitempty"`
	Website string `json:"website,omitempty"`
}

// OwnedBy reports whether p owns the profile.
func (v Vendor) OwnedBy(p auth.Principal) bool { return v.Owner != "" && v.Owner == p.AccountID }

// viewFor hides the contact from everyone but the owner, the city's managers
// and admins.
func (v Vendor) viewFor(ctx context.Context) Vendor {
	p, ok := auth.FromContext(ctx)
	if ok && (v.OwnedBy(p) || p.Manages(v.City)) {
		if v.Contact == nil {
			v.Contact = &Contact{}
		}
		return v
	}
	v.Contact = nil
	return v
}

func (v Vendor) public() Vendor {
	v.Contact = nil
	return v
}

// vendorKinds are the kinds a vendor can be.
var vendorKinds = map[string]bool{"farmer": true, "artisan": true, "food": true, "other": true}

// NewVendor is the body of POST /vendors.
type NewVendor struct {
	City        string   `json:"city"`
	Name        string   `json:"name"`
	Kind        string   `json:"kind"`
	Description string   `json:"description"`
	Categories  []string `json:"categories"`
	Languages   []string `json:"languages"`
	PhotoURL    string   `json:"photo_url"`
	Contact     *Contact `json:"contact"`
	// Owner is the creating account (the token's subject), not read from the body.
	Owner string `json:"-"`
}

// Validate checks a new vendor.
func (v *NewVendor) Validate() error {
	var f web.Fields
	checkName(&f, "name", &v.Name)
	if !vendorKinds[v.Kind] {
		f.Add("kind", "must be one of farmer, artisan, food, other")
	}
	if v.City == "" {
		f.Add("city", "is required")
	} else if !slugRE(v.City) {
		f.Add("city", "must be a city slug such as ghent")
	}
	checkText(&f, "description", v.Description, 2000)
	checkCategories(&f, "categories", v.Categories)
	checkLanguages(&f, "languages", v.Languages)
	if v.PhotoURL != "" {
		checkHTTPSURL(&f, "photo_url", v.PhotoURL)
	}
	checkContact(&f, v.Contact)
	return f.Err()
}

func checkContact(f *web.Fields, c *Contact) {
	if c == nil {
		return
	}
	if c.Email != "" {
		checkEmail(f, "contact.email", c.Email)
	}
	if c.Phone != "" && !phoneRE.MatchString(c.Phone) {
		f.Add("contact.phone", "must be an international number such as +32 9 123 45 67")
	}
	if c.Website != "" {
		checkHTTPSURL(f, "contact.website", c.Website)
	}
}

// VendorUpdate is the body of PATCH /vendors/{id}.
type VendorUpdate struct {
	Name        *string   `json:"name"`
	Kind        *string   `json:"kind"`
	Description *string   `json:"description"`
	Categories  *[]string `json:"categories"`
	Languages   *[]string `json:"languages"`
	PhotoURL    *string   `json:"photo_url"` // "" clears it
	Contact     *Contact  `json:"contact"`
	Version     *int64    `json:"version"`
}

// Validate checks the fields present.
func (u *VendorUpdate) Validate() error {
	var f web.Fields
	if u.Name == nil && u.Kind == nil && u.Description == nil && u.Categories == nil && u.Languages == nil &&
		u.PhotoURL == nil && u.Contact == nil && u.Version == nil {
		return noChange()
	}
	if u.Name != nil {
		checkName(&f, "name", u.Name)
	}
	if u.Kind != nil && !vendorKinds[*u.Kind] {
		f.Add("kind", "must be one of farmer, artisan, food, other")
	}
	if u.Description != nil {
		checkText(&f, "description", *u.Description, 2000)
	}
	if u.Categories != nil {
		checkCategories(&f, "categories", *u.Categories)
	}
	if u.Languages != nil {
		checkLanguages(&f, "languages", *u.Languages)
	}
	if u.PhotoURL != nil && *u.PhotoURL != "" {
		checkHTTPSURL(&f, "photo_url", *u.PhotoURL)
	}
	checkContact(&f, u.Contact)
	checkVersion(&f, u.Version)
	return f.Err()
}

// ── store ──

const vendorSelect = `SELECT id::text, city, name, kind, description, categories, languages, coalesce(photo_url, ''),
	contact, version, created_at, updated_at, coalesce(owner_account_id, '') FROM vendors`

func scanVendor(row pgx.CollectableRow) (Vendor, error) {
	var v Vendor
	var c Contact
	err := row.Scan(&v.ID, &v.City, &v.Name, &v.Kind, &v.Description, &v.Categories, &v.Languages, &v.PhotoURL,
		&c, &v.Version, &v.CreatedAt, &v.UpdatedAt, &v.Owner)
	v.Categories, v.Languages, v.Contact = nonNil(v.Categories), nonNil(v.Languages), &c
	return v, err
}

func vendor(ctx context.Context, q querier, id string, forUpdate bool) (Vendor, error) {
	if !isUUID(id) {
		return Vendor{}, web.Errorf(web.ENotFound, "there is no vendor %q", id)
	}
	sql := vendorSelect + ` WHERE id = $1`
	if forUpdate {
		sql += ` FOR NO KEY UPDATE`
	}
	rows, err := q.Query(ctx, sql, id)
	if err != nil {
		return Vendor{}, fmt.Errorf("listings: vendor %s: %w", id, err)
	}
	v, err := pgx.CollectExactlyOneRow(rows, scanVendor)
	if errors.Is(err, pgx.ErrNoRows) {
		return Vendor{}, web.Errorf(web.ENotFound, "there is no vendor %s", id)
	}
	if err != nil {
		return Vendor{}, fmt.Errorf("listings: vendor %s: %w", id, err)
	}
	return v, nil
}

// Vendor returns one vendor, with contact and owner, or ENotFound. Callers
// decide who may see the contact (viewFor).
func (s *Store) Vendor(ctx context.Context, id string) (Vendor, error) {
	return vendor(ctx, s.pool, id, false)
}

// CreateVendor stores a vendor profile owned by nv.Owner and announces it.
func (s *Store) CreateVendor(ctx context.Context, nv NewVendor) (Vendor, error) {
	var v Vendor
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		id := newID()
		contact := nv.Contact
		if contact == nil {
			contact = &Contact{}
		}
		var owner, photo *string
		if nv.Owner != "" {
			owner = &nv.Owner
		}
		if nv.PhotoURL != "" {
			photo = &nv.PhotoURL
		}
		_, err := tx.Exec(ctx, `
			INSERT INTO vendors (id, city, name, kind, description, categories, languages, photo_url, contact, owner_account_id)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
			id, nv.City, nv.Name, nv.Kind, nv.Description, nonNil(nv.Categories), nonNil(nv.Languages), photo, contact, owner)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "23503" {
			return &web.Error{Code: web.EInvalid, Message: "the request has invalid fields",
				Fields: []web.FieldError{{Field: "city", Message: fmt.Sprintf("there is no city %q", nv.City)}}}
		}
		if err != nil {
			return fmt.Errorf("listings: create vendor: %w", err)
		}
		v, err = announceVendor(ctx, tx, id)
		return err
	})
	return v, err
}

// announceVendor reloads a vendor and writes vendor.upserted with its public
// profile.
func announceVendor(ctx context.Context, tx pgx.Tx, id string) (Vendor, error) {
	v, err := vendor(ctx, tx, id, false)
	if err != nil {
		return Vendor{}, err
	}
	err = recordEvent(ctx, tx, contract.TypeVendorUpserted, v.City, "vendor", "upserted", "vendors/"+v.ID, contract.VendorV1{
		ID: v.ID, City: v.City, Name: v.Name, Kind: v.Kind, Description: v.Description, Categories: v.Categories,
		Languages: v.Languages, PhotoURL: v.PhotoURL, Version: v.Version,
	})
	return v, err
}

// UpdateVendor changes a profile: its owner's or, for an admin, any.
func (s *Store) UpdateVendor(ctx context.Context, id string, u VendorUpdate) (Vendor, error) {
	var v Vendor
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		p, err := auth.Require(ctx)
		if err != nil {
			return err
		}
		cur, err := vendor(ctx, tx, id, true)
		if err != nil {
			return err
		}
		if !cur.OwnedBy(p) && !p.IsAdmin() {
			return web.Errorf(web.EForbidden, "only the vendor who owns this profile may change it")
		}
		if u.Version != nil && *u.Version != cur.Version {
			return staleVersion("vendor profile", *u.Version, cur.Version)
		}
		next := cur
		if u.Name != nil {
			next.Name = *u.Name
		}
		if u.Kind != nil {
			next.Kind = *u.Kind
		}
		if u.Description != nil {
			next.Description = *u.Description
		}
		if u.Categories != nil {
			next.Categories = nonNil(*u.Categories)
		}
		if u.Languages != nil {
			next.Languages = nonNil(*u.Languages)
		}
		if u.PhotoURL != nil {
			next.PhotoURL = *u.PhotoURL
		}
		if u.Contact != nil {
			next.Contact = u.Contact
		}
		var photo *string
		if next.PhotoURL != "" {
			photo = &next.PhotoURL
		}
		if _, err := tx.Exec(ctx, `
			UPDATE vendors SET name = $3, kind = $4, description = $5, categories = $6, languages = $7, photo_url = $8,
			       contact = $9, version = version + 1, updated_at = now()
			WHERE id = $1 AND city = $2`, id, cur.City, next.Name, next.Kind, next.Description, next.Categories,
			next.Languages, photo, next.Contact); err != nil {
			return fmt.Errorf("listings: update vendor %s: %w", id, err)
		}
		v, err = announceVendor(ctx, tx, id)
		return err
	})
	return v, err
}

// MyVendors lists a page of the profiles an account owns, oldest first.
func (s *Store) MyVendors(ctx context.Context, owner string, p page) ([]Vendor, *string, error) {
	if p.After != "" {
		if err := s.pool.QueryRow(ctx, `SELECT 1 FROM vendors WHERE owner_account_id = $1 AND id = $2`, owner, p.After).Scan(new(int)); err != nil {
			if errors.Is(err, pgx.ErrNoRows) || !isUUID(p.After) {
				return nil, nil, staleCursor()
			}
			return nil, nil, fmt.Errorf("listings: my vendors: %w", err)
		}
	}
	rows, err := s.pool.Query(ctx, vendorSelect+`
		WHERE owner_account_id = $1
		  AND ($2 = '' OR (created_at, id) > (SELECT created_at, id FROM vendors WHERE id = NULLIF($2, '')::uuid))
		ORDER BY created_at, id LIMIT $3`, owner, p.After, p.Limit+1)
	return s.vendorPage(rows, err, p)
}

// CityVendors lists a page of a city's vendors by name, optionally of one
// kind or listing one category.
func (s *Store) CityVendors(ctx context.Context, city, kind, category string, p page) ([]Vendor, *string, error) {
	if p.After != "" {
		if err := s.pool.QueryRow(ctx, `SELECT 1 FROM vendors WHERE city = $1 AND id = $2`, city, p.After).Scan(new(int)); err != nil {
			if errors.Is(err, pgx.ErrNoRows) || !isUUID(p.After) {
				return nil, nil, staleCursor()
			}
			return nil, nil, fmt.Errorf("listings: city vendors: %w", err)
		}
	}
	rows, err := s.pool.Query(ctx, vendorSelect+`
		WHERE city = $1 AND ($2 = '' OR kind = $2) AND ($3 = '' OR $3 = ANY(categories))
		  AND ($4 = '' OR (name, id) > (SELECT name, id FROM vendors WHERE city = $1 AND id = NULLIF($4, '')::uuid))
		ORDER BY name, id LIMIT $5`, city, kind, category, p.After, p.Limit+1)
	return s.vendorPage(rows, err, p)
}

func (s *Store) vendorPage(rows pgx.Rows, err error, p page) ([]Vendor, *string, error) {
	if err != nil {
		return nil, nil, fmt.Errorf("listings: vendors: %w", err)
	}
	vendors, err := pgx.CollectRows(rows, scanVendor)
	if err != nil {
		return nil, nil, fmt.Errorf("listings: vendors: %w", err)
	}
	vendors, more := trim(p, vendors)
	var last string
	if len(vendors) > 0 {
		last = vendors[len(vendors)-1].ID
	}
	return vendors, p.next(more, last), nil
}

// ── http ──

func handleCreateVendor(store *Store, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := auth.Require(r.Context())
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		if !p.Has(auth.RoleVendor) {
			web.WriteError(w, r, log, web.Errorf(web.EForbidden, "only accounts with the vendor role may create vendor profiles"))
			return
		}
		nv, err := web.Decode[NewVendor](w, r)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		nv.Owner = p.AccountID
		v, err := store.CreateVendor(r.Context(), nv)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		w.Header().Set("Location", "/api/v1/listings/vendors/"+v.ID)
		web.JSON(w, http.StatusCreated, v.viewFor(r.Context()))
	})
}

func handleVendor(store *Store, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, err := store.Vendor(r.Context(), r.PathValue("id"))
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		web.JSON(w, http.StatusOK, v.viewFor(r.Context()))
	})
}

func handleUpdateVendor(store *Store, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !requireSignedIn(w, r, log) {
			return
		}
		u, err := web.Decode[VendorUpdate](w, r)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		v, err := store.UpdateVendor(r.Context(), r.PathValue("id"), u)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		web.JSON(w, http.StatusOK, v.viewFor(r.Context()))
	})
}

func handleMyVendors(store *Store, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := auth.Require(r.Context())
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		pg, err := readPage(r, "vendors/mine", p.AccountID)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		vendors, next, err := store.MyVendors(r.Context(), p.AccountID, pg)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		for i := range vendors {
			vendors[i] = vendors[i].viewFor(r.Context())
		}
		web.JSON(w, http.StatusOK, pageOf[Vendor]{Items: vendors, NextCursor: next})
	})
}

func handleCityVendors(store *Store, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := store.City(r.Context(), r.PathValue("city"))
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		q := r.URL.Query()
		kind, category := q.Get("kind"), q.Get("category")
		var f web.Fields
		if kind != "" && !vendorKinds[kind] {
			f.Add("kind", "must be one of farmer, artisan, food, other")
		}
		if category != "" && !categoryRE.MatchString(category) {
			f.Add("category", "must be a category slug such as cheese")
		}
		if err := f.Err(); err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		p, err := readPage(r, "vendors", c.Slug, kind, category)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		vendors, next, err := store.CityVendors(r.Context(), c.Slug, kind, category, p)
		if err != nil {
			web.WriteError(w, r, log, err)
			return
		}
		for i := range vendors {
			vendors[i] = vendors[i].public()
		}
		web.JSON(w, http.StatusOK, pageOf[Vendor]{Items: vendors, NextCursor: next})
	})
}
