package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/nats-io/nats.go/jetstream"
)

// EnsureStream makes sure the stream exists. The owner (the service that
// publishes to it) also brings its configuration up to date; others only
// create it when missing, so that start order does not matter.
//
// It sends an update only when the configuration differs: an unconditional
// CreateOrUpdateStream updates the stream on every start, and an update that
// overlaps another service creating its consumer races inside nats-server.
func EnsureStream(ctx context.Context, js jetstream.JetStream, cfg jetstream.StreamConfig, owner bool) error {
	s, err := js.Stream(ctx, cfg.Name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		_, err = js.CreateStream(ctx, cfg)
		if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			if !owner {
				return nil
			}
			s, err = js.Stream(ctx, cfg.Name) // created concurrently: compare below
		} else if err != nil {
			return fmt.Errorf("bus: create stream %s: %w", cfg.Name, err)
		} else {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("bus: stream %s: %w", cfg.Name, err)
	}
	if !owner || sameStreamConfig(s.CachedInfo().Config, cfg) {
		return nil
	}
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return fmt.Errorf("bus: update stream %s: %w", cfg.Name, err)
	}
	return nil
}

// sameStreamConfig compares the settings Piazza sets; the server fills in
// defaults for the rest.
func sameStreamConfig(have, want jetstream.StreamConfig) bool {
	return slices.Equal(have.Subjects, want.Subjects) &&
		have.Description == want.Description &&
		have.Retention == want.Retention &&
		have.Storage == want.Storage &&
		max(have.Replicas, 1) == max(want.Replicas, 1) &&
		have.MaxAge == want.MaxAge &&
		(want.MaxBytes == 0 || have.MaxBytes == want.MaxBytes) &&
		(want.Duplicates == 0 || have.Duplicates == want.Duplicates) &&
		have.Discard == want.Discard &&
		have.AllowAtomicPublish == want.AllowAtomicPublish
}
