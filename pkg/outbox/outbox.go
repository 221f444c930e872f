// Package outbox implements the transactional outbox: a service writes its
// state change and the event announcing it in one Postgres transaction, and a
// relay publishes the event to JetStream afterwards.
//
// Guarantees: an event is published if and only if its transaction commits;
// a row that commits late (after rows with higher sequence numbers were
// published) is still published, because the relay selects by "not yet
// published", never by a high-water mark; two relays never publish at the same
// time (a transaction-scoped advisory lock serialises them); a crash between
// JetStream's PubAck and marking the row leads to a republish with the same
// Nats-Msg-Id, which JetStream drops as a duplicate within the stream's
// duplicate window.
//
// The outbox must never be read by another service: it is the publishing
// service's private table in its own schema.
package outbox

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/localeurope/piazza/pkg/bus"
	"github.com/localeurope/piazza/pkg/postgres"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Migrations is the outbox table's migration set, applied in each service
// schema alongside the service's own migrations.
func Migrations() postgres.MigrationSet {
	sub, _ := fs.Sub(migrations, "migrations")
	return postgres.MigrationSet{Name: "outbox", FS: sub}
}

// Add writes ev, to be published on the NATS subject, in the caller's
// transaction. When the transaction's connection goes back to a pool with
// a Wake, the relay of this process is woken.
func Add(ctx context.Context, tx pgx.Tx, subject string, ev bus.Event) error {
	return AddAll(ctx, tx, Entry{Subject: subject, Event: ev})
}

// Entry is an event and the NATS subject to publish it on.
type Entry struct {
	Subject string
	Event   bus.Event
}

// AddAll writes entries in the caller's transaction, in order, in one
// statement: a change that announces itself with several events pays for one
// round trip and one trigger.
func AddAll(ctx context.Context, tx pgx.Tx, entries ...Entry) error {
	sql, args, err := insert(entries)
	if err != nil || sql == "" {
		return err
	}
	wrote(tx.Conn())
	if _, err := tx.Exec(ctx, sql, args...); err != nil {
		return fmt.Errorf("outbox: add %s: %w", entries[0].Event.Type, err)
	}
	return nil
}

// Queue adds the statement that writes entries, in order, to b, which the
// caller sends on conn inside its transaction: with its COMMIT, say, the
// events take no round trip of their own. An error is an entry that lacks a
// field; nothing is queued then.
func Queue(conn *pgx.Conn, b *pgx.Batch, entries ...Entry) error {
	sql, args, err := insert(entries)
	if err == nil && sql != "" {
		wrote(conn)
		b.Queue(sql, args...)
	}
	return err
}

// Wake wakes the relay of one schema in this process when a transaction
// that added rows ends on a connection of the schema's pool: the pool calls
// AfterRelease (postgres.Options.AfterRelease) once the connection is back
// from its transaction, committed or not.
//
// An earlier design woke relays with a NOTIFY from a statement trigger.
// PostgreSQL serialises the commits of every transaction that notifies, on
// one lock per database held through the commit's WAL flush, so no two of
// them share a flush: pgbench's two inserts reached 1,621 transactions/s
// with the trigger and 2,982/s without it, on the same machine
// (docs/benchmarks.md). Rows written by another process reach its own
// relay, or any relay's poll.
type Wake struct{ c chan struct{} }

// NewWake returns a Wake for one pool and its relay (Relay.Wake).
func NewWake() *Wake { return &Wake{c: make(chan struct{}, 1)} }

// wroteKey marks a connection whose transaction added rows.
const wroteKey = "piazza.outbox.wrote"

func wrote(c *pgx.Conn) { c.PgConn().CustomData()[wroteKey] = struct{}{} }

// AfterRelease is a pgxpool AfterRelease hook: it wakes the relay if the
// connection's last transaction added rows. It keeps every connection.
func (w *Wake) AfterRelease(c *pgx.Conn) bool {
	d := c.PgConn().CustomData()
	if _, ok := d[wroteKey]; ok {
		delete(d, wroteKey)
		select {
		case w.c <- struct{}{}:
		default: // a wake-up is pending; that round will see these rows
		}
	}
	return true
}

// insert returns the statement that writes entries ("" for none).
func insert(entries []Entry) (string, []any, error) {
	for _, e := range entries {
		if ev := e.Event; ev.ID == "" || ev.Type == "" || ev.Source == "" || e.Subject == "" {
			return "", nil, fmt.Errorf("outbox: event %q of type %q lacks id, type, source or subject", ev.ID, ev.Type)
		}
	}
	switch len(entries) {
	case 0:
		return "", nil, nil
	case 1:
		ev := entries[0].Event
		return insertSQL, []any{ev.ID, entries[0].Subject, ev.Source, ev.Type, ev.Subject, ev.Time, ev.DataContentType, ev.TraceParent, ev.Data}, nil
	}
	n := len(entries)
	ids, subjects, sources, types, ceSubjects := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	times, contentTypes, traceParents, data := make([]time.Time, n), make([]string, n), make([]string, n), make([][]byte, n)
	for i, e := range entries {
		ev := e.Event
		ids[i], subjects[i], sources[i], types[i], ceSubjects[i] = ev.ID, e.Subject, ev.Source, ev.Type, ev.Subject
		times[i], contentTypes[i], traceParents[i], data[i] = ev.Time, ev.DataContentType, ev.TraceParent, ev.Data
	}
	return insertManySQL, []any{ids, subjects, sources, types, ceSubjects, times, contentTypes, traceParents, data}, nil
}

const (
	insertSQL = `
	INSERT INTO outbox (event_id, subject, source, type, ce_subject, event_time, content_type, traceparent, data)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`
	// The rows take their sequence numbers in the order the SELECT yields
	// them, which ORDER BY ord makes the arrays' order.
	insertManySQL = `
	INSERT INTO outbox (event_id, subject, source, type, ce_subject, event_time, content_type, traceparent, data)
	SELECT id::uuid, subject, source, type, ce_subject, event_time, content_type, traceparent, data
	FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::timestamptz[], $7::text[], $8::text[], $9::bytea[])
	     WITH ORDINALITY AS e(id, subject, source, type, ce_subject, event_time, content_type, traceparent, data, ord)
	ORDER BY ord`
)
