// A real OpenID Connect provider for the tests (panva/node-oidc-provider, certified by the
// OpenID Foundation), on loopback. Configuration comes from the environment:
//   OIDC_PORT, OIDC_CLIENT_ID, OIDC_CLIENT_SECRET, OIDC_REDIRECT_URI
// Its development login form accepts any login name (the account id); the password check
// is the institution's business, not Arctern's. Claims: sub = the login name,
// preferred_username = the login name, email and name derived from it.
import Provider from 'oidc-provider';

const port = Number(process.env.OIDC_PORT);
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  clients: [
    {
      client_id: process.env.OIDC_CLIENT_ID,
      client_secret: process.env.OIDC_CLIENT_SECRET,
      redirect_uris: [process.env.OIDC_REDIRECT_URI],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    },
  ],
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        const local = id.split('@')[0];
        return {
          sub: `sub-${id}`,
          preferred_username: id,
          email: `${local}@mail.example.edu`,
          name: `${local.charAt(0).toUpperCase()}${local.slice(1)} Tester`,
        };
      },
    };
  },
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email'],
  },
  pkce: { required: () => true },
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['arctern-test-provider'] },
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`openid provider listening on ${issuer}`);
});
