-- +goose Up

-- Applications for a whole season or many dates of one market. An active
-- batch also applies for the days the generator creates later.
CREATE TABLE application_batches (
    id              uuid PRIMARY KEY,
    city            text NOT NULL,
    market_id       uuid NOT NULL,
    vendor_id       uuid NOT NULL REFERENCES vendors,
    season          boolean NOT NULL,
    dates           date[],          -- the requested dates; NULL for a season batch
    preferred_pitch text,
    note            text,
    status          text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'withdrawn', 'ended')),
    version         bigint NOT NULL DEFAULT 1,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz,
    FOREIGN KEY (city, market_id) REFERENCES markets (city, id),
    CHECK (season = (dates IS NULL))
);
CREATE INDEX application_batches_market ON application_batches (market_id) WHERE status = 'active';
CREATE INDEX application_batches_vendor ON application_batches (vendor_id, created_at DESC, id DESC);

-- The application lifecycle: review, the waitlist and its offers, and the
-- stall's live state on the day.
ALTER TABLE applications
    DROP CONSTRAINT applications_status_check,
    DROP CONSTRAINT applications_check,
    ADD CONSTRAINT applications_status_check CHECK (status IN
        ('pending', 'accepted', 'waitlisted', 'rejected', 'withdrawn', 'offered', 'declined', 'expired')),
    ADD COLUMN preferred_pitch  text,
    ADD COLUMN note             text,
    ADD COLUMN reason           text,
    ADD COLUMN batch_id         uuid REFERENCES application_batches,
    ADD COLUMN waitlisted_at    timestamptz,     -- the waitlist is first come, first served by this
    ADD COLUMN offer_expires_at timestamptz,
    ADD COLUMN decided_at       timestamptz,     -- when it last changed state
    ADD COLUMN live_state       text CHECK (live_state IN ('expected', 'open', 'closed')),
    ADD COLUMN checked_in_at    timestamptz,
    ADD COLUMN checked_out_at   timestamptz,
    ADD COLUMN status_text      text,
    ADD COLUMN status_posted_at timestamptz,
    ADD COLUMN updated_at       timestamptz,
    -- a pitch is held exactly while the application is accepted or offered
    ADD CONSTRAINT applications_pitch CHECK ((status IN ('accepted', 'offered')) = (pitch_id IS NOT NULL)),
    ADD CONSTRAINT applications_offer CHECK ((status = 'offered') = (offer_expires_at IS NOT NULL)),
    ADD CONSTRAINT applications_waitlist CHECK (status <> 'waitlisted' OR waitlisted_at IS NOT NULL),
    ADD CONSTRAINT applications_rejected CHECK (status <> 'rejected' OR reason IS NOT NULL),
    ADD CONSTRAINT applications_live CHECK (status <> 'accepted' OR live_state IS NOT NULL);
UPDATE applications SET live_state = 'expected' WHERE status = 'accepted';
UPDATE applications SET waitlisted_at = created_at WHERE status = 'waitlisted';

-- A pitch is never given twice on one market day, counting open offers.
DROP INDEX applications_one_stall_per_pitch;
CREATE UNIQUE INDEX applications_one_stall_per_pitch ON applications (market_day_id, pitch_id)
    WHERE status IN ('accepted', 'offered');
CREATE INDEX applications_day ON applications (market_day_id, created_at, id);
CREATE INDEX applications_waitlist ON applications (market_day_id, waitlisted_at, id) WHERE status = 'waitlisted';
CREATE INDEX applications_offers ON applications (offer_expires_at) WHERE status = 'offered';
CREATE INDEX applications_vendor ON applications (vendor_id, created_at, id);
CREATE INDEX applications_batch ON applications (batch_id) WHERE batch_id IS NOT NULL;

-- Every status a stall posted, newest last; the stall shows the latest.
CREATE TABLE status_posts (
    id             uuid PRIMARY KEY,
    city           text NOT NULL,
    application_id uuid NOT NULL REFERENCES applications,
    text           text NOT NULL,
    posted_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX status_posts_application ON status_posts (application_id, posted_at);

-- +goose Down
DROP TABLE status_posts;
DROP INDEX applications_batch, applications_vendor, applications_offers, applications_waitlist, applications_day,
    applications_one_stall_per_pitch;
DELETE FROM applications WHERE status IN ('offered', 'declined', 'expired');
ALTER TABLE applications
    DROP CONSTRAINT applications_live, DROP CONSTRAINT applications_rejected, DROP CONSTRAINT applications_waitlist,
    DROP CONSTRAINT applications_offer, DROP CONSTRAINT applications_pitch, DROP CONSTRAINT applications_status_check,
    DROP COLUMN updated_at, DROP COLUMN status_posted_at, DROP COLUMN status_text, DROP COLUMN checked_out_at,
    DROP COLUMN checked_in_at, DROP COLUMN live_state, DROP COLUMN decided_at, DROP COLUMN offer_expires_at,
    DROP COLUMN waitlisted_at, DROP COLUMN batch_id, DROP COLUMN reason, DROP COLUMN note, DROP COLUMN preferred_pitch,
    ADD CONSTRAINT applications_status_check CHECK (status IN ('pending', 'accepted', 'waitlisted', 'rejected', 'withdrawn')),
    ADD CONSTRAINT applications_check CHECK ((status = 'accepted') = (pitch_id IS NOT NULL));
CREATE UNIQUE INDEX applications_one_stall_per_pitch ON applications (market_day_id, pitch_id) WHERE status = 'accepted';
DROP TABLE application_batches;
