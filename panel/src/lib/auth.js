// Sign-in with MSAL.js (authorization code + PKCE) against the authority in the panel's config.
import { InteractionRequiredAuthError, PublicClientApplication } from "@azure/msal-browser";

/** True in the sign-in popup after Entra redirected back: MSAL in the opener reads this URL. */
export function isAuthPopup() {
  return (
    !!window.opener &&
    window.opener !== window &&
    /(^|[#?&])(code|error)=/.test(location.hash.slice(1) + "&" + location.search.slice(1))
  );
}

/** `page`: the registered redirect URI this page signs in through (the panel's, or e.g.
 * "recording.html"); after a redirect MSAL returns to the address the sign-in started from. */
export async function createAuth(auth, { framed, page = "" }) {
  const redirectUri = new URL(page, auth.redirectUri).href;
  const app = new PublicClientApplication({
    auth: {
      clientId: auth.clientId,
      authority: auth.authority,
      knownAuthorities: auth.knownAuthorities || [],
      redirectUri,
      postLogoutRedirectUri: redirectUri,
      navigateToLoginRequestUrl: true,
    },
    // Shared by the tabs of one browser: a second tab is signed in already (and meets §1.4).
    cache: { cacheLocation: "localStorage" },
    system: { allowRedirectInIframe: false },
  });
  await app.initialize();
  const redirected = await app.handleRedirectPromise();
  if (redirected?.account) app.setActiveAccount(redirected.account);
  if (!app.getActiveAccount() && app.getAllAccounts().length) {
    app.setActiveAccount(app.getAllAccounts()[0]);
  }
  const request = { scopes: auth.scopes };
  // A popup comes back to a blank page: MSAL in this window reads its address and closes it.
  const popupRedirectUri = new URL("redirect.html", auth.redirectUri).href;

  return {
    account: () => app.getActiveAccount(),
    /** Signs in: a full-page redirect at the top level, a popup inside D365's frame. */
    async signIn() {
      if (framed) {
        const result = await app.loginPopup({ ...request, redirectUri: popupRedirectUri });
        app.setActiveAccount(result.account);
        return result.account;
      }
      await app.loginRedirect(request);
      return new Promise(() => {}); // the page navigates away
    },
    async token() {
      const account = app.getActiveAccount();
      if (!account) throw new Error("not signed in");
      try {
        return (await app.acquireTokenSilent({ ...request, account })).accessToken;
      } catch (err) {
        if (err instanceof InteractionRequiredAuthError && framed) {
          return (await app.acquireTokenPopup({ ...request, redirectUri: popupRedirectUri })).accessToken;
        }
        if (err instanceof InteractionRequiredAuthError) {
          await app.acquireTokenRedirect(request);
        }
        throw err;
      }
    },
    async signOut() {
      const account = app.getActiveAccount();
      if (framed) await app.logoutPopup({ account, redirectUri: popupRedirectUri });
      else await app.logoutRedirect({ account });
    },
  };
}
