// Package web holds the HTTP building blocks every Piazza service shares: JSON
// decoding with limits and field errors, RFC 9457 problem responses, middleware
// (request id, logging, recovery, metrics), health endpoints and a server with
// timeouts and graceful shutdown.
//
// It knows nothing about markets or events, and it must never let an internal
// error message, SQL text or stack trace reach a client.
package web
