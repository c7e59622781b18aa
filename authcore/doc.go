// Package authcore is loginhub's login logic, free of HTTP and of any one
// store: QR tickets (signed, time-limited, moved pending → scanned →
// confirmed → redeemed by their rules), WeChat logins and sessions with
// rotating refresh tokens, phone numbers and personal data sealed at rest,
// and face checks. Service is the entry point; ports.go names what it
// needs from a store (authcore/memstore, authcore/redisstore) and
// errors.go the few kinds of error that handlers map to HTTP.
package authcore
