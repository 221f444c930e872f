package notifier

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/localeurope/piazza/pkg/auth"
	"github.com/localeurope/piazza/pkg/web"
)

// DeviceHeader carries an anonymous resident's device id: a random UUID the
// client makes once and keeps. It is the only key to that resident's data,
// so clients treat it as a secret.
const DeviceHeader = "X-Piazza-Device"

// maxFollows bounds one resident's follows.
const maxFollows = 200

// residentTopics are what a resident hears: their follows, and for an
// account its private topic.
func residentTopics(who string) []string {
	if id, ok := strings.CutPrefix(who, "account:"); ok {
		return []string{"account:" + id}
	}
	return nil
}

// resident identifies who is asking: the signed-in account, or else the
// device. It returns EUnauthorized when there is neither.
func resident(r *http.Request) (string, error) {
	if p, ok := auth.FromContext(r.Context()); ok {
		return "account:" + p.AccountID, nil
	}
	if d := r.Header.Get(DeviceHeader); d != "" {
		id, err := uuid.Parse(d)
		if err != nil || len(d) != 36 {
			return "", web.Errorf(web.EInvalid, "%s must be a UUID", DeviceHeader)
		}
		return "device:" + id.String(), nil
	}
	return "", web.Errorf(web.EUnauthorized, "send your device id (%s) or an access token", DeviceHeader)
}

// Follow is one thing a resident follows.
type Follow struct {
	Topic     string    `json:"topic"`
	CreatedAt time.Time `json:"created_at"`
}

// Store is the notifier schema.
type Store struct {
	pool *pgxpool.Pool
}

// Follows lists a resident's follows.
func (s *Store) Follows(ctx context.Context, who string) ([]Follow, error) {
	rows, err := s.pool.Query(ctx, `SELECT topic, created_at FROM follows WHERE resident = $1 ORDER BY created_at, topic`, who)
	if err != nil {
		return nil, fmt.Errorf("notifier: follows: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[Follow])
}

// Follow adds a topic; following twice is the same as once.
func (s *Store) Follow(ctx context.Context, who, topic string) (Follow, error) {
	f := Follow{Topic: topic}
	city := ""
	if kind, id, _ := strings.Cut(topic, ":"); kind == "city" {
		city = id
	}
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `
			INSERT INTO follows (resident, topic, city) VALUES ($1, $2, $3)
			ON CONFLICT (resident, topic) DO UPDATE SET topic = excluded.topic
			RETURNING created_at`, who, topic, city).Scan(&f.CreatedAt)
		if err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM follows WHERE resident = $1`, who).Scan(&n); err != nil {
			return err
		}
		if n > maxFollows {
			return web.Errorf(web.EConflict, "you follow %d things already; unfollow some first", maxFollows)
		}
		return nil
	})
	if err != nil {
		if web.ErrorCode(err) == web.EConflict {
			return Follow{}, err
		}
		return Follow{}, fmt.Errorf("notifier: follow: %w", err)
	}
	return f, nil
}

// Unfollow removes a topic; unfollowing what is not followed is fine.
func (s *Store) Unfollow(ctx context.Context, who, topic string) error {
	if _, err := s.pool.Exec(ctx, `DELETE FROM follows WHERE resident = $1 AND topic = $2`, who, topic); err != nil {
		return fmt.Errorf("notifier: unfollow: %w", err)
	}
	return nil
}

// Claim moves a device's follows and reads to an account (on sign-in).
func (s *Store) Claim(ctx context.Context, device, account string) (int64, error) {
	var moved int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
			INSERT INTO follows (resident, topic, city, created_at)
			SELECT $2, topic, city, created_at FROM follows WHERE resident = $1
			ON CONFLICT (resident, topic) DO NOTHING`, device, account)
		if err != nil {
			return err
		}
		moved = tag.RowsAffected()
		if _, err := tx.Exec(ctx, `
			INSERT INTO reads (resident, notification_id, read_at)
			SELECT $2, notification_id, read_at FROM reads WHERE resident = $1
			ON CONFLICT DO NOTHING`, device, account); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM follows WHERE resident = $1`, device); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM reads WHERE resident = $1`, device)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("notifier: claim follows: %w", err)
	}
	return moved, nil
}

// Erase deletes everything the notifier holds about a resident.
func (s *Store) Erase(ctx context.Context, who string) error {
	return pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM follows WHERE resident = $1`, who); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `DELETE FROM reads WHERE resident = $1`, who)
		return err
	})
}

// InboxItem is a notification in a resident's inbox.
type InboxItem struct {
	ID     string            `json:"id"`
	Kind   string            `json:"kind"`
	City   string            `json:"city"`
	Topics []string          `json:"topics"`
	Data   json.RawMessage   `json:"data"`
	Text   map[string]string `json:"text"`
	Time   time.Time         `json:"time"`
	Read   bool              `json:"read"`
}

// Inbox lists the notifications on a resident's topics, newest first,
// before the cursor (a notification id; ids are UUIDv7, so they sort by time).
func (s *Store) Inbox(ctx context.Context, who string, before string, limit int) ([]InboxItem, error) {
	rows, err := s.pool.Query(ctx, `
		SELECT n.id::text, n.kind, n.city, n.topics, n.data, coalesce(n.text, '{}'), n.created_at,
		       EXISTS (SELECT 1 FROM reads r WHERE r.resident = $1 AND r.notification_id = n.id)
		FROM notifications n
		WHERE n.topics && (ARRAY(SELECT topic FROM follows WHERE resident = $1) || $4::text[])
		  AND ($2 = '' OR n.id < $2::uuid)
		ORDER BY n.id DESC LIMIT $3`, who, before, limit, residentTopics(who))
	if err != nil {
		return nil, fmt.Errorf("notifier: inbox: %w", err)
	}
	items, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (InboxItem, error) {
		var it InboxItem
		err := row.Scan(&it.ID, &it.Kind, &it.City, &it.Topics, &it.Data, &it.Text, &it.Time, &it.Read)
		return it, err
	})
	if err != nil {
		return nil, fmt.Errorf("notifier: inbox: %w", err)
	}
	return items, nil
}

// MarkRead marks notifications read; ids that are not in the resident's
// inbox are ignored.
func (s *Store) MarkRead(ctx context.Context, who string, ids []string) (int64, error) {
	tag, err := s.pool.Exec(ctx, `
		INSERT INTO reads (resident, notification_id)
		SELECT $1, n.id FROM notifications n
		WHERE n.id = ANY($2::uuid[]) AND n.topics && (ARRAY(SELECT topic FROM follows WHERE resident = $1) || $3::text[])
		ON CONFLICT DO NOTHING`, who, ids, residentTopics(who))
	if err != nil {
		return 0, fmt.Errorf("notifier: mark read: %w", err)
	}
	return tag.RowsAffected(), nil
}

// Reads lists the ids of the notifications a resident has read.
func (s *Store) Reads(ctx context.Context, who string) ([]string, error) {
	rows, err := s.pool.Query(ctx, `SELECT notification_id::text FROM reads WHERE resident = $1 ORDER BY read_at`, who)
	if err != nil {
		return nil, fmt.Errorf("notifier: reads: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
