package listings

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// Hooks between the market-day side of listings (schedules, generation,
// opening, closing, cancelling) and the application side (applications,
// batches, stalls). The market-day code calls them inside its transaction,
// after its own change and before it commits; an error rolls the whole change
// back. They are no-ops until the application side fills them in.

// marketDayCreated is a market day just generated from its market's schedule.
type marketDayCreated struct {
	ID, City, MarketID string
	Date               string // local date, YYYY-MM-DD
	StartsAt, EndsAt   time.Time
	Now                time.Time // the generator's clock
}

// onDayCreated runs in the transaction that generated day (by the rolling
// horizon, a new market or a schedule change), once per day ever.
//
// Application side: create here the applications of active application
// batches that cover day (season batches and batches with day.Date in their
// dates), with their events.
func (s *Store) onDayCreated(ctx context.Context, tx pgx.Tx, day marketDayCreated) error {
	now := day.Now
	if now.IsZero() {
		now = time.Now()
	}
	return s.applyBatchesTo(ctx, tx, day.ID, day.MarketID, day.Date, now)
}

// marketDayEnded is a market day that was just closed or cancelled.
type marketDayEnded struct {
	ID, City string
	Status   string // closed or cancelled
}

// onDayEnded runs in the transaction that closed or cancelled day, after the
// day's row changed and before market_day.closed/cancelled is written.
//
// Application side: check out the stalls still open here (stall.checked_out
// per stall), and whatever else a closed or cancelled day means for
// applications and offers.
func (s *Store) onDayEnded(ctx context.Context, tx pgx.Tx, day marketDayEnded) error {
	return closeStalls(ctx, tx, day.ID, time.Now())
}
