package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
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
	Harness       float64 // CPU seconds of this process (the goroutines and pgx)
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
	var n atomic.Int64
	errs := make([]error, o.clients)
	time.Sleep(time.Second) // the pgbench backends before were reaped
	before := takeSnapshot(ctx, all)
	wctx, cancel := context.WithTimeout(ctx, min(o.duration, 20*time.Second))
	defer cancel()
	var wg sync.WaitGroup
	for i := range o.clients {
		mine := rotate(days, i*len(days)/o.clients)
		wg.Go(func() {
			vendor, next := "", len(mine)
			for wctx.Err() == nil {
				if next == len(mine) {
					v, err := store.CreateVendor(wctx, listings.NewVendor{City: city,
						Name: fmt.Sprintf("Store vendor %d-%d", i, n.Load()), Kind: "farmer", Description: "A load-test vendor.",
						Categories: []string{}, Languages: []string{}})
					if err != nil {
						if wctx.Err() == nil {
							errs[i] = err
						}
						return
					}
					vendor, next = v.ID, 0
				}
				d := mine[next]
				next++
				_, err := store.Apply(wctx, d.ID, listings.NewApplication{VendorID: vendor}, time.Now())
				var we *web.Error
				switch {
				case err == nil:
					n.Add(1)
				case errors.As(err, &we):
					// refused (a closed day, say), as the API would have
				case wctx.Err() == nil:
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	after := takeSnapshot(ctx, all)
	if err := errors.Join(errs...); err != nil {
		return storeWrites{}, fmt.Errorf("registrations without HTTP: %w", err)
	}
	printProcTable(out, fmt.Sprintf("registrations without HTTP: %d goroutines calling listings.Store.Apply on the run's database", o.clients), all, before, after)
	return storeWrites{Registrations: n.Load(), Elapsed: after.at.Sub(before.at), Harness: cpu(all, before, after),
		Machine: after.host.busy - before.host.busy}, nil
}
