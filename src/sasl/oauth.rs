//! The OAuth 2.0 bearer token mechanisms: OAUTHBEARER (RFC 7628) and Google's and
//! Microsoft's XOAUTH2. Both send the token in the first response; a server that refuses
//! it answers with a base64 JSON error in a 334 challenge, which the client acknowledges
//! (OAUTHBEARER with `%x01`, XOAUTH2 with an empty response) before the final 535.

use super::Error;
use crate::secret::Secret;

/// The OAUTHBEARER initial response: `n,a=<user>,^Aauth=Bearer <token>^A^A` (a GS2 header
/// naming the user, then the `auth` key-value pair).
pub(super) fn oauthbearer(username: &str, token: &Secret) -> Secret {
    let user = username.replace('=', "=3D").replace(',', "=2C");
    bearer(format!("n,a={user},\x01auth=Bearer ").into_bytes(), token)
}

/// The XOAUTH2 initial response: `user=<user>^Aauth=Bearer <token>^A^A`.
pub(super) fn xoauth2(username: &str, token: &Secret) -> Secret {
    bearer(format!("user={username}\x01auth=Bearer ").into_bytes(), token)
}

fn bearer(mut message: Vec<u8>, token: &Secret) -> Secret {
    message.extend_from_slice(token.expose());
    message.extend_from_slice(b"\x01\x01");
    Secret::new(message)
}

/// What the server's error challenge says: its `status` (and `scope`, when it names the
/// permission the token lacks), for the error message. Anything that is not the JSON
/// RFC 7628 §3.2.2 describes is shown as "no details".
pub(super) fn refusal(challenge: &[u8]) -> String {
    let json: Option<serde_json::Value> = serde_json::from_slice(challenge).ok();
    let field = |name: &str| {
        json.as_ref().and_then(|j| j.get(name)).and_then(|v| match v {
            serde_json::Value::String(s) => Some(s.chars().take(200).collect::<String>()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        })
    };
    match (field("status"), field("scope")) {
        (Some(status), Some(scope)) => format!("the server refused the token: status {status}, scope {scope}"),
        (Some(status), None) => format!("the server refused the token: status {status}"),
        (None, _) => "the server refused the token (no details)".to_string(),
    }
}

/// Why credentials cannot be sent: a user name with a control character (a `^A` would
/// start another key-value pair), or a token that would break the message or the line.
pub(super) fn check(username: &str, token: &Secret) -> Result<(), Error> {
    if username.chars().any(char::is_control) {
        return Err(Error::Credentials(
            "the user name has a control character, which a bearer mechanism cannot send".into(),
        ));
    }
    check_token(token)
}

/// Why a token cannot be sent: one that would break the message or the line.
pub fn check_token(token: &Secret) -> Result<(), Error> {
    // RFC 6750 §2.1's b64token characters; a control character would end the key-value
    // pair early.
    let valid = |b: &u8| b.is_ascii_alphanumeric() || b"-._~+/=".contains(b);
    if token.is_empty() || !token.expose().iter().all(valid) {
        return Err(Error::Credentials(
            "the OAuth token is empty or has characters a bearer token cannot have (RFC 6750)".into(),
        ));
    }
    Ok(())
}
