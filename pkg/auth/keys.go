package auth

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go/jetstream"
)

// KeyBucket is the NATS key-value bucket holding the public keys that verify
// access tokens, one entry per key id. The accounts service writes it; every
// service watches it.
const KeyBucket = "PIAZZA_TOKEN_KEYS"

func keyBucket(ctx context.Context, js jetstream.JetStream, replicas int) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, KeyBucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket: KeyBucket, Description: "Public keys that verify Piazza access tokens.",
			Storage: jetstream.FileStorage, Replicas: max(replicas, 1), History: 1,
		})
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, KeyBucket)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("auth: key bucket: %w", err)
	}
	return kv, nil
}

// PublishKey makes k's public key available to every verifier.
func PublishKey(ctx context.Context, js jetstream.JetStream, k Key, replicas int) error {
	kv, err := keyBucket(ctx, js, replicas)
	if err != nil {
		return err
	}
	if _, err := kv.Put(ctx, k.ID, []byte(base64.StdEncoding.EncodeToString(k.Public()))); err != nil {
		return fmt.Errorf("auth: publish key %s: %w", k.ID, err)
	}
	return nil
}

// WatchKeys loads the published keys into v and keeps it up to date until
// ctx is done. It returns once the current keys are loaded; the watch goes on
// in the background.
func WatchKeys(ctx context.Context, js jetstream.JetStream, v *Verifier, replicas int, log *slog.Logger) error {
	kv, err := keyBucket(ctx, js, replicas)
	if err != nil {
		return err
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return fmt.Errorf("auth: watch keys: %w", err)
	}
	apply := func(e jetstream.KeyValueEntry) {
		if e.Operation() != jetstream.KeyValuePut {
			v.RemoveKey(e.Key())
			return
		}
		pub, err := base64.StdEncoding.DecodeString(string(e.Value()))
		if err != nil || len(pub) != ed25519.PublicKeySize {
			log.Error("ignoring a malformed token key", "kid", e.Key())
			return
		}
		v.SetKey(e.Key(), ed25519.PublicKey(pub))
	}
	// The watcher sends the current values, then a nil entry, then updates.
	for e := range w.Updates() {
		if e == nil {
			break
		}
		apply(e)
	}
	go func() {
		defer w.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e != nil {
					apply(e)
				}
			}
		}
	}()
	return nil
}
