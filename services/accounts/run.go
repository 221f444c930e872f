// Package accounts is the accounts service: sign-up and sign-in with email
// and password (argon2id), short-lived access tokens (EdDSA JWTs) with
// rotating refresh tokens, and roles (vendor, manager of cities, admin). It
// publishes the public half of its signing key in NATS, from where every
// service verifies tokens; it is the only holder of the private key.
//
// It never reads another service's tables and never imports another service.
package accounts

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"time"

	"github.com/google/uuid"
	"github.com/localeurope/piazza/pkg/app"
	"github.com/localeurope/piazza/pkg/auth"
	"github.com/localeurope/piazza/pkg/postgres"
	"github.com/localeurope/piazza/pkg/ratelimit"
)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Schema is the Postgres schema the service owns.
const Schema = "accounts"

// Migrations are the accounts schema's migration sets.
func Migrations() []postgres.MigrationSet {
	sub, _ := fs.Sub(migrationFiles, "migrations")
	return []postgres.MigrationSet{ratelimit.Migrations(), {Name: "accounts", FS: sub}}
}

// Run runs the accounts service until ctx is done.
func Run(ctx context.Context, d app.Deps) error {
	log := d.Log.With("service", "accounts")
	if d.SigningKey.Private == nil {
		return fmt.Errorf("accounts: no signing key")
	}
	pool, err := postgres.Open(ctx, d.DatabaseURL, postgres.Options{Schema: Schema, AppName: "piazza-accounts"})
	if err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	defer pool.Close()
	if err := postgres.Migrate(ctx, pool, log, Migrations()...); err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	if err := auth.PublishKey(ctx, d.JS, d.SigningKey, d.StreamReplicas); err != nil {
		return fmt.Errorf("accounts: %w", err)
	}
	dummy, err := auth.HashPassword(uuid.NewString())
	if err != nil {
		return err
	}
	s := &service{
		store: &Store{pool: pool}, key: d.SigningKey, log: log, now: d.Now, dummyHash: dummy,
		byIP:    &ratelimit.Limiter{Pool: pool, Name: "ip", Every: 6 * time.Second, Burst: 10},    // 10 at once, then 10 a minute
		byEmail: &ratelimit.Limiter{Pool: pool, Name: "email", Every: 12 * time.Second, Burst: 5}, // 5 at once, then 5 a minute
	}
	go ratelimit.Prune(ctx, pool, d.Now, 10*time.Minute)
	if d.DemoData {
		seeded, err := seedDemo(ctx, s.store)
		if err != nil {
			return err
		}
		if seeded && d.Stdout != nil {
			fmt.Fprintf(d.Stdout, "piazza: demo accounts (password %q):\n", DemoPassword)
			for _, a := range demoAccounts {
				fmt.Fprintf(d.Stdout, "  %-32s %s\n", a.Email, a.What)
			}
		}
	}
	routes(d.Mux, s)
	d.Health.AddCheck("accounts_postgres", func(ctx context.Context) error { return pool.Ping(ctx) })
	d.Ready()
	<-ctx.Done()
	return nil
}

// DemoPassword is the password of every demo account.
const DemoPassword = "piazza-demo"

var demoAccounts = []struct {
	Email, Name, What string
	Roles, Cities     []string
}{
	{"admin@piazza.example", "Ada Admin", "admin of every city", []string{auth.RoleAdmin}, nil},
	{"manager.ghent@piazza.example", "Mieke Manager", "market manager, Gent", []string{auth.RoleManager}, []string{"ghent"}},
	{"manager.bologna@piazza.example", "Marco Manager", "market manager, Bologna", []string{auth.RoleManager}, []string{"bologna"}},
	{"vendor@piazza.example", "Vera Vendor", "vendor (farmer)", []string{auth.RoleVendor}, nil},
}

// seedDemo creates the demo accounts in an empty accounts table.
func seedDemo(ctx context.Context, store *Store) (bool, error) {
	n, err := store.Count(ctx)
	if err != nil || n > 0 {
		return false, err
	}
	hash, err := auth.HashPassword(DemoPassword)
	if err != nil {
		return false, err
	}
	for _, a := range demoAccounts {
		if _, err := store.Create(ctx, SignUp{Email: a.Email, Name: a.Name}, hash, a.Roles, a.Cities); err != nil {
			if web409(err) {
				return false, nil // another replica seeded at the same time
			}
			return false, fmt.Errorf("accounts: seed %s: %w", a.Email, err)
		}
	}
	return true, nil
}
