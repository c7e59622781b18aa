package redisstore

import (
	_ "embed"

	"github.com/redis/go-redis/v9"
)

// The scripts, each in lua/ with a header that says its keys, arguments
// and reply. A script that moves tickets starts with the ticket library
// (ticket.lua), one that reads or writes sessions with the session library
// (session.lua). go-redis runs them with EVALSHA, falling back to EVAL
// when a server does not have them cached yet.
var (
	//go:embed lua/ticket.lua
	ticketLib string
	//go:embed lua/session.lua
	sessionLib string

	//go:embed lua/move.lua
	moveLua string
	//go:embed lua/phone_move.lua
	phoneMoveLua string
	//go:embed lua/redeem.lua
	redeemLua string
	//go:embed lua/principal.lua
	principalLua string
	//go:embed lua/create_session.lua
	createSessionLua string
	//go:embed lua/rotate_refresh.lua
	rotateRefreshLua string
	//go:embed lua/delete_session.lua
	deleteSessionLua string
	//go:embed lua/mark_step_up.lua
	markStepUpLua string
	//go:embed lua/update_user.lua
	updateUserLua string
	//go:embed lua/unlink.lua
	unlinkLua string
	//go:embed lua/unlink_identity.lua
	unlinkIdentityLua string
	//go:embed lua/erase_user.lua
	eraseUserLua string
	//go:embed lua/put_personal_data.lua
	putPersonalDataLua string
	//go:embed lua/allow.lua
	allowLua string
	//go:embed lua/unlock.lua
	unlockLua string
	//go:embed lua/take_face.lua
	takeFaceLua string
	//go:embed lua/record_ref.lua
	recordRefLua string
	//go:embed lua/forget_ticket.lua
	forgetTicketLua string
	//go:embed lua/sandbox_user.lua
	sandboxUserLua string
	//go:embed lua/sandbox_forget.lua
	sandboxForgetLua string
	//go:embed lua/sandbox_use_code.lua
	sandboxUseCodeLua string
	//go:embed lua/sandbox_new_token.lua
	sandboxNewTokenLua string
	//go:embed lua/put_code.lua
	putCodeLua string
	//go:embed lua/check_code.lua
	checkCodeLua string
	//go:embed lua/put_sandbox_sms.lua
	putSandboxSMSLua string
	//go:embed lua/set_password.lua
	setPasswordLua string
	//go:embed lua/limited.lua
	limitedLua string
	//go:embed lua/append_login.lua
	appendLoginLua string
	//go:embed lua/revoke_sessions.lua
	revokeSessionsLua string

	moveScript            = redis.NewScript(ticketLib + moveLua)
	phoneMoveScript       = redis.NewScript(ticketLib + sessionLib + phoneMoveLua)
	redeemScript          = redis.NewScript(ticketLib + sessionLib + redeemLua)
	principalScript       = redis.NewScript(sessionLib + principalLua)
	createSessionScript   = redis.NewScript(sessionLib + createSessionLua)
	rotateRefreshScript   = redis.NewScript(sessionLib + rotateRefreshLua)
	deleteSessionScript   = redis.NewScript(deleteSessionLua)
	markStepUpScript      = redis.NewScript(markStepUpLua)
	updateUserScript      = redis.NewScript(updateUserLua)
	unlinkScript          = redis.NewScript(unlinkLua)
	unlinkIdentityScript  = redis.NewScript(unlinkIdentityLua)
	eraseUserScript       = redis.NewScript(eraseUserLua)
	putPersonalDataScript = redis.NewScript(putPersonalDataLua)
	allowScript           = redis.NewScript(allowLua)
	unlockScript          = redis.NewScript(unlockLua)
	takeFaceScript        = redis.NewScript(takeFaceLua)
	recordRefScript       = redis.NewScript(sessionLib + recordRefLua)
	forgetTicketScript    = redis.NewScript(ticketLib + forgetTicketLua)
	sandboxUserScript     = redis.NewScript(sandboxUserLua)
	sandboxForgetScript   = redis.NewScript(sandboxForgetLua)
	sandboxUseCodeScript  = redis.NewScript(sandboxUseCodeLua)
	sandboxNewTokenScript = redis.NewScript(sandboxNewTokenLua)
	putCodeScript         = redis.NewScript(putCodeLua)
	checkCodeScript       = redis.NewScript(checkCodeLua)
	putSandboxSMSScript   = redis.NewScript(putSandboxSMSLua)
	setPasswordScript     = redis.NewScript(setPasswordLua)
	limitedScript         = redis.NewScript(limitedLua)
	appendLoginScript     = redis.NewScript(appendLoginLua)
	revokeSessionsScript  = redis.NewScript(revokeSessionsLua)
)
