/** OpenID Shared Signals Framework 1.0: the version a transmitter's discovery document names. */
export const SSF_SPEC_VERSION = '1_0';

/** The `typ` header of every Security Event Token (RFC 8417 section 2.3). */
export const SET_TYP = 'secevent+jwt';

/** Media type of a SET pushed over HTTP (RFC 8935). */
export const SET_MEDIA_TYPE = 'application/secevent+jwt';

/** Delivery methods (SSF 1.0 section 6.1.1): push (RFC 8935) and poll (RFC 8936). */
export const DELIVERY_PUSH = 'urn:ietf:rfc:8935';
export const DELIVERY_POLL = 'urn:ietf:rfc:8936';

/** Bearer tokens (RFC 6750) in `authorization_schemes` of the discovery document. */
export const AUTHORIZATION_SCHEME_BEARER = 'urn:ietf:rfc:6750';

/** The SSF verification event (SSF 1.0 section 8.1.4.1). */
export const SSF_VERIFICATION = 'https://schemas.openid.net/secevent/ssf/event-type/verification';

/** The SSF stream-updated event (SSF 1.0 section 8.1.5). */
export const SSF_STREAM_UPDATED =
  'https://schemas.openid.net/secevent/ssf/event-type/stream-updated';
