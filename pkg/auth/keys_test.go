package auth_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/localeurope/piazza/pkg/auth"
	"github.com/localeurope/piazza/pkg/bus/bustest"
	"github.com/nats-io/nats.go/jetstream"
)

func testContext(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	tb.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds, failing after a generous deadline.
func eventually(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("gave up waiting: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func publish(tb testing.TB, js jetstream.JetStream, k auth.Key) {
	tb.Helper()
	if err := auth.PublishKey(testContext(tb), js, k, 1); err != nil {
		tb.Fatalf("PublishKey: %v", err)
	}
}

// watching returns a verifier fed by WatchKeys until the test ends.
func watching(tb testing.TB, js jetstream.JetStream) *auth.Verifier {
	tb.Helper()
	v := auth.NewVerifier(nil)
	if err := auth.WatchKeys(testContext(tb), js, v, 1, slog.New(slog.NewTextHandler(io.Discard, nil))); err != nil {
		tb.Fatalf("WatchKeys: %v", err)
	}
	return v
}

func verifies(v *auth.Verifier, token string) bool {
	_, err := v.Verify(token)
	return err == nil
}

func TestKeysViaNATS(t *testing.T) {
	_, js := bustest.Connect(t)
	now := time.Now()

	t.Run("WatchKeys on an empty bucket returns with no keys", func(t *testing.T) {
		if v := watching(t, js); v.HasKeys() {
			t.Error("a verifier has keys before any was published")
		}
	})

	first := newKey(t)
	firstToken := sign(t, first, ghentManager, now)

	t.Run("a key published before WatchKeys is known when WatchKeys returns", func(t *testing.T) {
		publish(t, js, first)
		v := watching(t, js)
		if _, err := v.Verify(firstToken); err != nil {
			t.Errorf("Verify right after WatchKeys: %v", err)
		}
	})

	t.Run("a key published while watching is picked up", func(t *testing.T) {
		v := watching(t, js)
		second := newKey(t)
		publish(t, js, second)
		tok := sign(t, second, ghentManager, now)
		eventually(t, "the watching verifier accepts the new key's token", func() bool { return verifies(v, tok) })
		if !verifies(v, firstToken) {
			t.Error("publishing a second key dropped the first")
		}
	})

	t.Run("publishing a key twice is harmless", func(t *testing.T) {
		publish(t, js, first)
		if v := watching(t, js); !verifies(v, firstToken) {
			t.Error("the republished key does not verify")
		}
	})

	t.Run("a malformed entry is ignored and later keys still arrive", func(t *testing.T) {
		v := watching(t, js)
		kv, err := js.KeyValue(testContext(t), auth.KeyBucket)
		if err != nil {
			t.Fatal(err)
		}
		bad := newKey(t)
		if _, err := kv.Put(testContext(t), bad.ID, []byte("not base64!")); err != nil {
			t.Fatal(err)
		}
		after := newKey(t)
		publish(t, js, after)
		eventually(t, "the key published after the malformed entry arrives", func() bool {
			return verifies(v, sign(t, after, ghentManager, now))
		})
		// Updates arrive in order: the malformed entry was seen, and ignored.
		if verifies(v, sign(t, bad, ghentManager, now)) {
			t.Error("a token of the malformed entry's key id verified")
		}
	})

	t.Run("deleting a key from the bucket makes its tokens fail", func(t *testing.T) {
		v := watching(t, js)
		if !verifies(v, firstToken) {
			t.Fatal("the key is not known to begin with")
		}
		kv, err := js.KeyValue(testContext(t), auth.KeyBucket)
		if err != nil {
			t.Fatal(err)
		}
		if err := kv.Delete(testContext(t), first.ID); err != nil {
			t.Fatal(err)
		}
		eventually(t, "the deleted key's token is refused", func() bool {
			_, err := v.Verify(firstToken)
			return errors.Is(err, auth.ErrInvalidToken)
		})
		if late := watching(t, js); verifies(late, firstToken) {
			t.Error("a verifier started after the delete still knows the key")
		}
	})
}
