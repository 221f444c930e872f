package notifier

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/localeurope/piazza/services/contract"
)

// reminderHour is the local hour from which followers of a vendor hear that
// the vendor will be at a market tomorrow.
const reminderHour = 17

// remindTomorrow tells each vendor's followers, once, the evening before a
// market day on which the vendor has a stall. It runs every minute on every
// replica; rows are claimed with SKIP LOCKED and marked in the same
// transaction as the notification, so each stall is announced once.
func remindTomorrow(ctx context.Context, pool *pgxpool.Pool, now func() time.Time, log *slog.Logger) error {
	t := time.NewTicker(time.Minute)
	defer t.Stop()
	for {
		if _, err := RemindDue(ctx, pool, now()); err != nil && ctx.Err() == nil {
			log.Warn("tomorrow's reminders failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// RemindDue sends the reminders due at now and returns how many it sent.
func RemindDue(ctx context.Context, pool *pgxpool.Pool, now time.Time) (int, error) {
	sent := 0
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT s.application_id::text, s.city, s.vendor_id::text, s.data, s.version
			FROM stalls s JOIN cities c ON c.slug = s.city
			WHERE NOT s.announced AND NOT s.released
			  AND s.date = (($1::timestamptz AT TIME ZONE c.timezone)::date + 1)
			  AND extract(hour FROM $1::timestamptz AT TIME ZONE c.timezone) >= $2
			ORDER BY s.date LIMIT 500
			FOR UPDATE OF s SKIP LOCKED`, now, reminderHour)
		if err != nil {
			return err
		}
		type due struct {
			app, city, vendor string
			data              []byte
			version           int64
		}
		var list []due
		var d due
		if _, err := pgx.ForEachRow(rows, []any{&d.app, &d.city, &d.vendor, &d.data, &d.version}, func() error {
			list = append(list, d)
			return nil
		}); err != nil {
			return err
		}
		for _, d := range list {
			var s StallRegisteredData
			if err := json.Unmarshal(d.data, &s); err != nil {
				return err
			}
			cause := fmt.Sprintf("reminder:%s:%d", d.app, d.version)
			if err := record(ctx, tx, cause, "", "vendor.tomorrow", d.city,
				[]string{contract.Topic("vendor", d.vendor)}, s,
				facts{"vendor": s.VendorName, "market": s.MarketName, "pitch": s.Pitch, "date": s.Date, "place": s.PlaceName}); err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `UPDATE stalls SET announced = true WHERE application_id = $1`, d.app); err != nil {
				return err
			}
			sent++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("notifier: reminders: %w", err)
	}
	return sent, nil
}
