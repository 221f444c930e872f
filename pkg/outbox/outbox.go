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
// transaction. A statement trigger wakes the relay when the transaction
// commits; Postgres folds identical notifications within one transaction, so
// a transaction that adds many events sends one NOTIFY.
func Add(ctx context.Context, tx pgx.Tx, subject string, ev bus.Event) error {
	return AddAll(ctx, tx, Entry{Subject: subject, Event: ev})
}

// Entry is an event and the NATS subject to publish it on.
type Entry struct {
	Subject string
	Event   bus.Event
}

// AddAll writes entries in the caller's transaction, in order, in one round
// trip to the server: a change that announces itself with several events
// pays for one.
func AddAll(ctx context.Context, tx pgx.Tx, entries ...Entry) error {
	for _, e := range entries {
		if ev := e.Event; ev.ID == "" || ev.Type == "" || ev.Source == "" || e.Subject == "" {
			return fmt.Errorf("outbox: event %q of type %q lacks id, type, source or subject", ev.ID, ev.Type)
		}
	}
	var err error
	switch len(entries) {
	case 0:
		return nil
	case 1: // a batch of one costs more than a statement
		e := entries[0]
		_, err = tx.Exec(ctx, insertSQL, e.args()...)
	default:
		b := &pgx.Batch{}
		for _, e := range entries {
			b.Queue(insertSQL, e.args()...)
		}
		err = tx.SendBatch(ctx, b).Close()
	}
	if err != nil {
		return fmt.Errorf("outbox: add %s: %w", entries[0].Event.Type, err)
	}
	return nil
}

func (e Entry) args() []any {
	ev := e.Event
	return []any{ev.ID, e.Subject, ev.Source, ev.Type, ev.Subject, ev.Time, ev.DataContentType, ev.TraceParent, ev.Data}
}

const insertSQL = `
	INSERT INTO outbox (event_id, subject, source, type, ce_subject, event_time, content_type, traceparent, data)
	VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`
