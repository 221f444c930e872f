package notifier

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/localeurope/piazza/pkg/bus/bustest"
)

// residentClient calls the notifier's REST API as one anonymous device.
type residentClient struct {
	tb     testing.TB
	base   string
	device string
}

func (c residentClient) do(method, path string, body any) (int, map[string]any) {
	c.tb.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, c.base+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.device != "" {
		req.Header.Set(DeviceHeader, c.device)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.tb.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	if resp.StatusCode >= 500 {
		c.tb.Fatalf("%s %s: %d %v", method, path, resp.StatusCode, out)
	}
	return resp.StatusCode, out
}

func topicsOf(out map[string]any) []string {
	var ts []string
	items, _ := out["items"].([]any)
	for _, it := range items {
		ts = append(ts, it.(map[string]any)["topic"].(string))
	}
	return ts
}

func TestFollowsAndInbox(t *testing.T) {
	dbURL := newDatabase(t)
	_, js := bustest.Connect(t)
	base := startRun(t, dbURL, js)
	pool := openPool(t, dbURL)
	me := residentClient{tb: t, base: base, device: uuid.NewString()}
	other := residentClient{tb: t, base: base, device: uuid.NewString()}

	t.Run("a device follows and unfollows; following twice is following once", func(t *testing.T) {
		for _, topic := range []string{"city:ghent", "vendor:" + uuid.NewString(), "city:ghent"} {
			if code, out := me.do("PUT", "/api/v1/notifier/follows/"+topic, nil); code != 200 {
				t.Fatalf("follow %s: %d %v", topic, code, out)
			}
		}
		_, out := me.do("GET", "/api/v1/notifier/follows", nil)
		if got := topicsOf(out); len(got) != 2 || got[0] != "city:ghent" {
			t.Fatalf("follows = %v, want city:ghent and one vendor", got)
		}
		if _, out := other.do("GET", "/api/v1/notifier/follows", nil); len(topicsOf(out)) != 0 {
			t.Fatalf("another device sees follows: %v", out)
		}
		vendor := topicsOf(out)[1]
		if code, _ := me.do("DELETE", "/api/v1/notifier/follows/"+vendor, nil); code != 204 {
			t.Fatalf("unfollow: %d", code)
		}
		if _, out := me.do("GET", "/api/v1/notifier/follows", nil); fmt.Sprint(topicsOf(out)) != "[city:ghent]" {
			t.Fatalf("after unfollow: %v", topicsOf(out))
		}
	})
	t.Run("bad input is a 4xx problem", func(t *testing.T) {
		for _, c := range []struct {
			client       residentClient
			method, path string
			want         int
		}{
			{residentClient{tb: t, base: base}, "GET", "/api/v1/notifier/follows", 401},
			{residentClient{tb: t, base: base, device: "not-a-uuid"}, "GET", "/api/v1/notifier/follows", 422},
			{me, "PUT", "/api/v1/notifier/follows/planet:mars", 422},
			{me, "PUT", "/api/v1/notifier/follows/nocolon", 422},
			{me, "GET", "/api/v1/notifier/inbox?limit=0", 422},
			{me, "GET", "/api/v1/notifier/inbox?cursor=zzz", 422},
			{residentClient{tb: t, base: base}, "POST", "/api/v1/notifier/follows/claim", 401},
		} {
			if code, out := c.client.do(c.method, c.path, nil); code != c.want {
				t.Errorf("%s %s = %d %v, want %d", c.method, c.path, code, out, c.want)
			}
		}
		if code, _ := me.do("POST", "/api/v1/notifier/inbox/read", map[string]any{"ids": []string{"x"}}); code != 422 {
			t.Errorf("mark read with a bad id = %d, want 422", code)
		}
	})
	t.Run("a resident follows at most 200 things", func(t *testing.T) {
		many := residentClient{tb: t, base: base, device: uuid.NewString()}
		for i := 0; i < maxFollows; i++ {
			if code, out := many.do("PUT", fmt.Sprintf("/api/v1/notifier/follows/market:%d", i), nil); code != 200 {
				t.Fatalf("follow %d: %d %v", i, code, out)
			}
		}
		if code, _ := many.do("PUT", "/api/v1/notifier/follows/market:one-too-many", nil); code != 409 {
			t.Fatalf("follow 201 = %d, want 409", code)
		}
		if code, _ := many.do("PUT", "/api/v1/notifier/follows/market:3", nil); code != 200 {
			t.Fatalf("re-following one of the 200 = %d, want 200", code)
		}
	})
	t.Run("the inbox lists notifications on followed topics, newest first, paged, with read marks", func(t *testing.T) {
		var ids []string
		for i := 0; i < 5; i++ {
			id := uuid.Must(uuid.NewV7()).String()
			ids = append(ids, id)
			if _, err := pool.Exec(context.Background(), `INSERT INTO notifications (id, city, kind, topics, data, cause_id) VALUES ($1, 'ghent', 'stall.registered', $2, '{"pitch":"A1"}', $3)`,
				id, []string{"city:ghent", "vendor:v"}, uuid.NewString()); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Millisecond) // distinct UUIDv7 timestamps
		}
		if _, err := pool.Exec(context.Background(), `INSERT INTO notifications (id, city, kind, topics, data, cause_id) VALUES ($1, 'bologna', 'stall.registered', '{city:bologna}', '{}', 'c')`,
			uuid.Must(uuid.NewV7()).String()); err != nil {
			t.Fatal(err)
		}
		_, page1 := me.do("GET", "/api/v1/notifier/inbox?limit=3", nil)
		items := page1["items"].([]any)
		if len(items) != 3 || items[0].(map[string]any)["id"] != ids[4] || page1["next_cursor"] == nil {
			t.Fatalf("page 1 = %v", page1)
		}
		_, page2 := me.do("GET", "/api/v1/notifier/inbox?limit=3&cursor="+page1["next_cursor"].(string), nil)
		items2 := page2["items"].([]any)
		if len(items2) != 2 || items2[1].(map[string]any)["id"] != ids[0] || page2["next_cursor"] != nil {
			t.Fatalf("page 2 = %v", page2)
		}
		if code, out := me.do("POST", "/api/v1/notifier/inbox/read", map[string]any{"ids": []string{ids[4], ids[3]}}); code != 200 || out["marked"] != float64(2) {
			t.Fatalf("mark read = %d %v", code, out)
		}
		_, page1 = me.do("GET", "/api/v1/notifier/inbox?limit=3", nil)
		read := []bool{}
		for _, it := range page1["items"].([]any) {
			read = append(read, it.(map[string]any)["read"].(bool))
		}
		if fmt.Sprint(read) != "[true true false]" {
			t.Fatalf("read marks = %v", read)
		}
		if _, out := other.do("GET", "/api/v1/notifier/inbox", nil); len(out["items"].([]any)) != 0 {
			t.Fatalf("a device that follows nothing has an inbox: %v", out)
		}
	})
	t.Run("a resident exports and erases what the notifier holds", func(t *testing.T) {
		_, out := me.do("GET", "/api/v1/notifier/me", nil)
		if len(out["follows"].([]any)) != 1 || len(out["read_notifications"].([]any)) != 2 {
			t.Fatalf("export = %v", out)
		}
		if code, _ := me.do("DELETE", "/api/v1/notifier/me", nil); code != 204 {
			t.Fatalf("erase = %d", code)
		}
		_, out = me.do("GET", "/api/v1/notifier/me", nil)
		if len(out["follows"].([]any)) != 0 || len(out["read_notifications"].([]any)) != 0 {
			t.Fatalf("after erase = %v", out)
		}
	})
	t.Run("signing in moves a device's follows and reads to the account", func(t *testing.T) {
		s := &Store{pool: pool}
		device, account := "device:"+uuid.NewString(), "account:"+uuid.NewString()
		ctx := context.Background()
		for _, topic := range []string{"city:ghent", "market:m"} {
			if _, err := s.Follow(ctx, device, topic); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.Follow(ctx, account, "city:ghent"); err != nil {
			t.Fatal(err)
		}
		if n, err := s.Claim(ctx, device, account); err != nil || n != 1 {
			t.Fatalf("claim = %d, %v; want 1 new follow", n, err)
		}
		fs, _ := s.Follows(ctx, account)
		left, _ := s.Follows(ctx, device)
		if len(fs) != 2 || len(left) != 0 {
			t.Fatalf("account follows %v, device keeps %v", fs, left)
		}
	})
}
