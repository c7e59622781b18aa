// Type-checked by web/types_test.go (tsc --noEmit): the package through
// require, as a CommonJS build sees it.
import hub = require("@loginhub/desktop");

const login: hub.Login = hub.start({ baseURL: "", onError: (e: hub.LoginHubError) => void e.retryAfterMs });
login.stop();
const same: boolean = hub.default.Error === hub.LoginHubError;
void same;
// @ts-expect-error: start takes options, not a URL
hub.start("https://login.example.com");
