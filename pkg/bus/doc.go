// Package bus connects Piazza to NATS JetStream: it connects to a server or
// embeds one, encodes events as CloudEvents 1.0 in NATS binary mode, sets up
// streams and durable consumers, and runs a consume loop that acks after
// success, naks with backoff on transient errors and terminates poison
// messages.
//
// It must never know a subject or payload of any service: those live in
// services/contract.
package bus
