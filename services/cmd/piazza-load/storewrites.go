package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/localeurope/piazza/pkg/postgres"
	"github.com/localeurope/piazza/pkg/web"
	"github.com/localeurope/piazza/services/listings"
)

// The registrations without HTTP: as many goroutines as writes had clients
// register stalls straight through listings.Store (the API's own code: the
// day's lock and read, the insert, the outbox rows and the commit) on the
// run's database, with no HTTP, token or JSON. Set against pgbench's two
// inserts, it shows how much of the write path's ratio the registration's
// database work alone leaves.

// storeWrites is what the registrations without HTTP did.
type storeWrites struct {
	Registrations int64
	Elapsed       time.Duration
	Machine       float64 // seconds the machine was busy
}

func (s storeWrites) perSecond() float64 { return float64(s.Registrations) / s.Elapsed.Seconds() }

func measureStoreWrites(ctx context.Context, o *options, c *cluster, days []marketDay, out io.Writer) (storeWrites, error) {
	if len(days) == 0 {
		return storeWrites{}, errors.New("no market days to apply for")
	}
	pool, err := postgres.Open(ctx, c.dbURL, postgres.Options{Schema: listings.Schema, AppName: "piazza-load-store", MaxConns: int32(o.clients)})
	if err != nil {
		return storeWrites{}, err
	}
	defer pool.Close()
	store := listings.NewStore(pool)
	all := []watched{harnessSelf()}
	time.Sleep(time.Second) // the pgbench backends before were reaped
	before := takeSnapshot(ctx, all)
	var vendors atomic.Int64
	n, err := drive(ctx, o.clients, min(o.duration, 20*time.Second), func(i int) func(context.Context) (bool, error) {
		mine := rotate(days, i*len(days)/o.clients)
		vendor, next := "", len(mine)
		return func(ctx context.Context) (bool, error) {
			if next == len(mine) {
				v, err := store.CreateVendor(ctx, listings.NewVendor{City: city,
					Name: fmt.Sprintf("Store vendor %d", vendors.Add(1)), Kind: "farmer", Description: "A load-test vendor.",
					Categories: []string{}, Languages: []string{}})
				if err != nil {
					return false, err
				}
				vendor, next = v.ID, 0
			}
			d := mine[next]
			next++
			_, err := store.Apply(ctx, d.ID, listings.NewApplication{VendorID: vendor}, time.Now())
			if we := (*web.Error)(nil); errors.As(err, &we) {
				return false, nil // refused (a closed day, say), as the API would have
			}
			return err == nil, err
		}
	})
	after := takeSnapshot(ctx, all)
	if err != nil {
		return storeWrites{}, fmt.Errorf("registrations without HTTP: %w", err)
	}
	printProcTable(out, fmt.Sprintf("registrations without HTTP: %d goroutines calling listings.Store.Apply on the run's database", o.clients), all, before, after)
	return storeWrites{Registrations: n, Elapsed: after.at.Sub(before.at),
		Machine: after.host.busy - before.host.busy}, nil
}
