/*
 * Types of loginhub.js, the browser client for loginhub QR scan login (API v1).
 *
 * One object, three ways to reach it:
 *   <script src="https://login.example.com/loginhub.js">   the global LoginHub (script files
 *                                                         see it through `export as namespace`)
 *   import { start, LoginHubError } from "@loginhub/desktop"   ESM (loginhub.mjs)
 *   const { start } = require("@loginhub/desktop")             CommonJS (loginhub.js)
 *
 * web/types_test.go checks that this file names every option start() reads,
 * every member of what it returns and every field of LoginHubError, so the
 * two cannot drift apart silently.
 */

export as namespace LoginHub;

/** The states of a ticket, in the order they can happen. */
export type TicketState = "pending" | "scanned" | "confirmed" | "redeemed" | "cancelled" | "expired";

/** A QR code to show, passed to onQR: a fresh one follows each expired or cancelled ticket. */
export interface QRCode {
  /** The ticket's id. */
  id: string;
  /** The signed ticket the QR code carries. */
  ticket: string;
  /** What the QR code encodes: `<hub public URL>/s/<ticket>`. */
  qr_url: string;
  /** URL of the QR code as a PNG image (relative to the page when baseURL is ""). */
  png: string;
  /** URL of the QR code as an SVG image. */
  svg: string;
  /** RFC 3339 time at which the ticket expires. */
  expires_at: string;
}

/** Who scanned the QR code, shown from "scanned" on. */
export interface Scanner {
  nickname: string;
  avatar_url: string;
}

/** A ticket's state, passed to onState: each version once, in order. */
export interface StateEvent {
  id: string;
  state: TicketState;
  /** Increases by one with each transition. */
  version: number;
  expires_at: string;
  /** Present from "scanned" on. */
  scanner?: Scanner;
}

/** The user a session belongs to: what every login knows, plus what its method knows. */
export interface SessionUser {
  id: string;
  nickname: string;
  avatar_url: string;
  openid?: string;
  unionid?: string;
  /** A phone login's number, masked ("+86 138****5678"). */
  phone_masked?: string;
  /** The login created the user. */
  is_new?: boolean;
  [field: string]: unknown;
}

/** A session, passed to onLogin. Keep its tokens out of logs and URLs. */
export interface Session {
  /** Slides: each use extends it to 30 minutes from then. */
  access_token: string;
  /** Lasts 7 days; rotated by POST /v1/session/refresh. */
  refresh_token: string;
  token_type: "Bearer";
  /** Seconds: 1800. */
  expires_in: number;
  user: SessionUser;
}

/**
 * A LoginHubError's code: one of the API's error codes, "network" (no
 * answer, or a timeout), "dpop_unavailable" (requireDPoP without WebCrypto,
 * or a proof that could not be signed), "resume_unavailable" (withProvider
 * could not keep the login across a redirect), or "http_<status>" for an
 * answer without a JSON error body.
 */
export type ErrorCode =
  | "invalid_request" | "unauthorized" | "forbidden" | "not_found" | "conflict" | "expired"
  | "rate_limited" | "upstream_unavailable" | "internal"
  | "network" | "dpop_unavailable" | "resume_unavailable"
  | `http_${number}`
  | (string & {});

/** An error reported to onError, or a withProvider promise's rejection. */
export declare class LoginHubError extends Error {
  constructor(code: ErrorCode, message?: string, status?: number);
  /** Always "LoginHubError". */
  name: string;
  /** What went wrong: see ErrorCode. */
  error: ErrorCode;
  /** The HTTP status; 0 when there was no response. */
  status: number;
  /** True when the login stopped because of it (start again to retry). */
  fatal: boolean;
  /** From the hub's Retry-After (capped at 60 s), when it sent one that the page may read; else 0. */
  retryAfterMs: number;
}

/** What start() takes. Callbacks run synchronously; one that throws is reported to the browser and does not break the login. */
export interface StartOptions {
  /** The hub, e.g. "https://login.example.com"; default "": this page's origin. */
  baseURL?: string;
  /** A QR code to show. */
  onQR?(qr: QRCode): void;
  /** A new state of the current ticket. */
  onState?(state: StateEvent): void;
  /** The login succeeded; everything has stopped. */
  onLogin?(session: Session): void;
  /** Something went wrong; if error.fatal the login has stopped. */
  onError?(error: LoginHubError): void;
  /** true: long-poll only, never WebSocket. */
  usePolling?: boolean;
  /** true: fail (dpop_unavailable) instead of redeeming without a DPoP key. */
  requireDPoP?: boolean;
}

/** withProvider's options. */
export interface ProviderOptions {
  /** true: the page itself goes to the provider instead of a popup. */
  redirect?: boolean;
  /** Where the provider sends the page back after a redirect (default: this page); it must call start again. */
  returnTo?: string;
}

/** A running login, returned by start(). */
export interface Login {
  /** Ends everything: timers, requests, the socket. */
  stop(): void;
  /** Replaces the QR code with a fresh one (not while redeeming). */
  refresh(): void;
  /**
   * Logs in with a provider instead of a scan: "qq", "weibo", "wechat_web"
   * or an OpenID Connect upstream's name. Call it from a click handler (it
   * opens a popup). Resolves once the provider's page is open; onState and
   * onLogin follow as after a scan. Rejects with a LoginHubError ("conflict"
   * when there is no QR code yet).
   */
  withProvider(provider: string, options?: ProviderOptions): Promise<void>;
}

/** Starts a login: creates a ticket, shows its QR code, watches it and redeems it once confirmed. */
export declare function start(options?: StartOptions): Login;

export { LoginHubError as Error };

/** The object loginhub.js hands out, as the global LoginHub, module.exports, or the default export. */
export interface LoginHubModule {
  start: typeof start;
  Error: typeof LoginHubError;
  LoginHubError: typeof LoginHubError;
  /** The object itself. */
  default: LoginHubModule;
}

declare const LoginHub: LoginHubModule;
export default LoginHub;
