package redisstore

import (
	"encoding/hex"

	"github.com/loginhub/loginhub/authcore"
)

// The key layout, with the default prefix "lh" (hex is lower-case hex of a
// SHA-256):
//
//	lh:{t:<ticket id>}                 ticket (string, see EncodeTicket); TTL: expiry + retention
//	lh:{t:<ticket id>}:v               the ticket's channel (messages: see DecodeTicket)
//	lh:{u:<user id>}                   user (hash n, a, c, and per identity i:<provider>:<subject> → "<linked
//	                                   at, unix ms>|<unionid>", the list UnlinkIdentity counts; iv 1 once every
//	                                   identity is noted); no TTL
//	lh:{u:<user id>}:s:<family>        a login family's live session (hash, see sessionFields); TTL: refresh expiry
//	lh:{u:<user id>}:s:<family>:used:<hex refresh>
//	                                   a consumed refresh token (→ its refresh expiry, unix ms); TTL: that expiry
//	lh:{u:<user id>}:sessions          the user's session index: names of its session keys and consumed-refresh
//	                                   marks (sorted set; score: the key's expiry, unix ms; members past it are
//	                                   dropped whenever one is added); TTL: its latest score
//	lh:{u:<user id>}:refs              records in other slots that name the user: "t:<ticket id>" (a ticket it
//	                                   scanned), "fv:<verify id>" (a face verification it started) (sorted set;
//	                                   score: when the record is gone for sure, unix ms); TTL: its latest score
//	lh:{u:<user id>}:ids               names of the identity and unionid keys linked to the user (set; may
//	                                   hold stale names, which erasure skips); no TTL
//	lh:{u:<user id>}:pd                personal data (hash: field → value sealed by the Vault); no TTL
//	lh:{u:<user id>}:pwd               the user's password hash (string, a PHC argon2id string); no TTL
//	lh:{u:<user id>}:logins            login history (list of JSON authcore.LoginAttempt, newest first, the last
//	                                   authcore.LoginsKept); no TTL; erased with the user
//	lh:{u:<user id>}:audit             audit trail (list of JSON authcore.AuditEntry, oldest first, the last
//	                                   authcore.AuditKept); no TTL: kept after the user's erasure
//	lh:{i:<provider>:<subject>}        identity → user id; no TTL
//	lh:{un:<unionid>}                  unionid → user id; no TTL
//	lh:{k:<openid>}                    WeChat session_key, sealed by the core's Vault; TTL: 7 days
//	                                   (authcore.RefreshTokenTTL) from the wx.login that gave it
//	lh:{fv:<verify id>}                face verification in progress (JSON, see faceRecord); TTL: its expiry
//	lh:{sms:<E.164>}:c:<purpose>       the number's live SMS code (hash: h hex SHA-256 of the code, e expiry
//	                                   unix ms, t wrong tries left); TTL: its expiry
//	lh:{sms:<E.164>}:inbox             the sandbox's messages to the number, codes in clear (list of JSON
//	                                   sandboxMessage, oldest first, the last sms.MailboxKept); TTL: a day
//	                                   (sms.MailboxTTL) after the last; only when SMS is emulated
//	lh:once:<key>                      replay cache entry; TTL: its ttl
//	lh:oauth:<state>                   a third-party login in progress (JSON authcore.OAuthState); TTL: its
//	                                   expiry (10 minutes); taken once (GETDEL)
//	lh:rate:<key>                      rate-limit window counter; TTL: the window
//	lh:{at:<appid>}                    WeChat access_token ("<expiry unix ms> <token>"; a secret); TTL: its expiry
//	lh:{lock:<name>}                   a TryLock lease (→ the holder's random token); TTL: the lease
//	lh:{sbx}:secret:<appid>            the sandbox app's secret (SET NX by the first node); no TTL
//	lh:{sbx}:u:<name>                  sandbox user (hash k: session_key, o: openid); TTL: SandboxUserTTL, refreshed on use
//	lh:{sbx}:o:<openid>                sandbox openid → user name; TTL: as its user
//	lh:{sbx}:users                     sandbox users' index (sorted set: name, scored by last use, unix ms; at most
//	                                   the Sandbox's maxUsers, the least recently used forgotten); TTL: SandboxUserTTL
//	lh:{sbx}:c:<kind>:<code>           sandbox wx.login ("login") or getPhoneNumber ("phone") code ("<expiry unix
//	                                   ms> <name>", "-" once used); TTL: its expiry
//	lh:{sbx}:t:<token>                 sandbox access_token (→ its expiry, unix ms); TTL: its expiry + 1 hour
//	lh:{sbx}:cur:<kind>                the current sandbox access_token of kind ("plain", "stable"); TTL: as that token
//	lh:{sbx}:f:id:<verify id>          sandbox face verification (JSON, opaque here); TTL: an hour past its last use
//	lh:{sbx}:f:result:<verify result>  the same, once the phone played it; TTL: as above
//	lh:{sbx}:fc:<verify id>            the claim of the phone that played it (SET NX); TTL: as above
//	lh:sbx:<provider>:…                the QQ, Weibo and WeChat website fakes' apps, codes and tokens, and
//	                                   the carriers' fake (provider "carrier": its keys' secrets, its tokens)
//	                                   (authcore/oauthsandbox.RedisState, written by the hub, not this store);
//	                                   codes and tokens expire an hour after their grant
//
// The braces are Redis Cluster hash tags: a ticket and its channel share
// one slot, and a user shares one with its sessions, link set, personal
// data, password hash, login history and audit trail, so that one script reads a session and its user, or
// erases a user, on a Cluster too. Access tokens name their user and family
// (authcore.TokenRef), so every session key is known before a script runs.
// A user's identities, unionids and WeChat session_keys live in other
// slots: EraseUser unlinks them one by one (compare and delete) before it
// deletes the user-slot keys in one script (the user, its sessions and
// consumed marks, as its session index names them, its personal data),
// and then deletes the tickets it scanned and its face verifications, as
// its refs index names them, one by one (compare and delete) too. The
// store writes an index entry whenever it writes a record that names the
// user, so that erasure finds every one without scanning the keyspace. A
// ticket and a user's sessions live in different slots too: on a Cluster
// a phone's move and a redeem are two scripts, on one server one. The
// sandbox's keys (the hub's fake WeChat, shared by a sandbox cluster) all
// share the slot {sbx}: a sandbox is for tests and staging, never a load
// to spread, and one slot lets a script bound its users while it writes
// one.

func (s *Store) ticketKey(id string) string { return s.prefix + ":{t:" + id + "}" }

func (s *Store) userKey(id string) string { return s.prefix + ":{u:" + id + "}" }

// sessionKey is the live session of ref's login family.
func (s *Store) sessionKey(ref authcore.TokenRef) string {
	return s.userKey(ref.UserID) + ":s:" + ref.Family
}

// usedKey marks refresh token ref as consumed.
func (s *Store) usedKey(ref authcore.TokenRef) string {
	return s.sessionKey(ref) + ":used:" + hex.EncodeToString(ref.Hash[:])
}

// userLinksKey is the set of identity and unionid key names linked to user id.
func (s *Store) userLinksKey(id string) string { return s.userKey(id) + ":ids" }

func (s *Store) personalDataKey(id string) string { return s.userKey(id) + ":pd" }

func (s *Store) passwordKey(id string) string { return s.userKey(id) + ":pwd" }

// sessionIndexKey is the index of user id's session keys and consumed marks.
func (s *Store) sessionIndexKey(id string) string { return s.userKey(id) + ":sessions" }

// refsKey is the index of records in other slots that name user id.
func (s *Store) refsKey(id string) string { return s.userKey(id) + ":refs" }

func (s *Store) loginsKey(id string) string { return s.userKey(id) + ":logins" }

func (s *Store) auditKey(id string) string { return s.userKey(id) + ":audit" }

func (s *Store) faceKey(verifyID string) string { return s.prefix + ":{fv:" + verifyID + "}" }

func (s *Store) identityKey(id authcore.Identity) string {
	return s.prefix + ":{i:" + id.Provider + ":" + id.Subject + "}"
}

func (s *Store) unionKey(unionID string) string { return s.prefix + ":{un:" + unionID + "}" }

func (s *Store) sessionKeyKey(openid string) string { return s.prefix + ":{k:" + openid + "}" }

// codeKey is the live SMS code of phone for purpose. The number is the
// hash tag, so every purpose of one number shares a slot.
func (s *Store) codeKey(phone, purpose string) string {
	return s.prefix + ":{sms:" + phone + "}:c:" + purpose
}

// mailboxKey is the sandbox's messages to phone.
func (s *Store) mailboxKey(phone string) string { return s.prefix + ":{sms:" + phone + "}:inbox" }

func (s *Store) onceKey(key string) string { return s.prefix + ":once:" + key }

// oauthKey is a third-party login in progress, by its state value.
func (s *Store) oauthKey(state string) string { return s.prefix + ":oauth:" + state }

func (s *Store) rateKey(key string) string { return s.prefix + ":rate:" + key }

func (s *Store) accessTokenKey(appID string) string { return s.prefix + ":{at:" + appID + "}" }

func (s *Store) lockKey(name string) string { return s.prefix + ":{lock:" + name + "}" }

func (b *Sandbox) secretKey(appID string) string { return b.prefix + ":{sbx}:secret:" + appID }

func (b *Sandbox) userKey(name string) string { return b.prefix + ":{sbx}:u:" + name }

func (b *Sandbox) openIDKey(openid string) string { return b.prefix + ":{sbx}:o:" + openid }

func (b *Sandbox) usersKey() string { return b.prefix + ":{sbx}:users" }

func (b *Sandbox) codeKey(kind, code string) string {
	return b.prefix + ":{sbx}:c:" + kind + ":" + code
}

func (b *Sandbox) tokenKey(token string) string { return b.prefix + ":{sbx}:t:" + token }

func (b *Sandbox) currentTokenKey(kind string) string { return b.prefix + ":{sbx}:cur:" + kind }

func (b *Sandbox) faceKey(key string) string { return b.prefix + ":{sbx}:f:" + key }

func (b *Sandbox) faceClaimKey(verifyID string) string { return b.prefix + ":{sbx}:fc:" + verifyID }
