//! The `sts-component` world: WIT conversions plus one round trip through
//! wasi:http.

lakeport_http::component_world!("sts-component");

use lakeport_no_cli as _;

use exports::lakeport::plugins::sts as wit;

use crate::{AssumeRoleRequest, Credentials, StsError};

struct Component;

fn error(e: StsError) -> wit::StsError {
    match e {
        StsError::Transport(m) => wit::StsError::Transport(m),
        StsError::HostDenied(h) => wit::StsError::HostDenied(StsError::HostDenied(h).to_string()),
        StsError::InvalidResponse(m) => wit::StsError::InvalidResponse(m),
        e @ StsError::Sts { .. } => {
            let message = e.message_with_hint();
            let StsError::Sts { code, status, request_id, .. } = e else { unreachable!() };
            wit::StsError::Sts(wit::StsRefusal { code, message, status, request_id })
        }
        StsError::InvalidInput(m) => wit::StsError::InvalidInput(m),
    }
}

fn credentials(c: Credentials) -> wit::Credentials {
    wit::Credentials {
        access_key_id: c.access_key_id,
        secret_access_key: c.secret_access_key,
        session_token: c.session_token,
        expiration: c.expiration,
        assumed_role_id: c.assumed_role_id,
        assumed_role_arn: c.assumed_role_arn,
        subject: c.subject,
    }
}

impl wit::Guest for Component {
    fn assume_role_with_web_identity(req: wit::AssumeRoleRequest) -> Result<wit::Credentials, wit::StsError> {
        let request = AssumeRoleRequest {
            endpoint: req.endpoint,
            role_arn: req.role_arn,
            web_identity_token: req.web_identity_token,
            session_name: req.session_name,
            subject: req.subject,
            duration_seconds: req.duration_seconds,
            policy: req.policy,
            provider_id: req.provider_id,
        };
        let http = request.http_request().map_err(error)?;
        let response = lakeport_http::send(&http).map_err(|e| {
            error(match e {
                lakeport_http::HttpError::Denied { host } => StsError::HostDenied(host),
                lakeport_http::HttpError::Transport { message, .. } | lakeport_http::HttpError::Local(message) => StsError::Transport(message),
            })
        })?;
        request.parse_response(&response).map(credentials).map_err(error)
    }

    fn parse_response(status: u16, content_type: Option<String>, body: Vec<u8>) -> Result<wit::Credentials, wit::StsError> {
        crate::parse_assume_role_response(status, content_type.as_deref(), &body).map(credentials).map_err(error)
    }

    fn session_name(explicit: Option<String>, subject: Option<String>) -> String {
        crate::session_name(explicit.as_deref(), subject.as_deref())
    }
}

export!(Component);
