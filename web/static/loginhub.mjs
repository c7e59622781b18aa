/*
 * loginhub.mjs: loginhub.js as an ES module, for front-end builds
 * (`import { start } from "@loginhub/desktop"`) and for browsers without one
 * (`import { start } from "https://login.example.com/loginhub.mjs"`, served
 * by the hub beside /loginhub.js). The code is loginhub.js's; this file only
 * hands its object out as exports. Types: loginhub.d.ts.
 */
import * as loaded from "./loginhub.js";

// A bundler or Node loads loginhub.js as CommonJS: its module.exports is
// the default export here. A browser loads it as a module with no exports,
// where it sets the global LoginHub instead.
const LoginHub = loaded.default && typeof loaded.default.start === "function" ? loaded.default : globalThis.LoginHub;

export default LoginHub;
export const start = LoginHub.start;
export const LoginHubError = LoginHub.Error;
export { LoginHubError as Error };
