//! `custosd check`: open every configured device once and say what answered, then ask the
//! server whether it is the one pinned and whether it knows this device. Every line is text for
//! people (no Rust debug structures): the installer reads it.

use custos_protocol::modbus_map::{Beam, Door, GateInputs};

use super::CHECK_TIMEOUT;
use super::settings::{gate_io_settings, reader_settings};
use crate::actuators::{GateIo, GateIoError};
use crate::config::{Config, Role};
use crate::keys::DeviceKey;
use crate::readers;
use crate::uplink::{Registration, Uplink};

/// What `custosd check` found for one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceCheck {
    /// Which device: `readers[0] (uhf-main)` or `gate_io`.
    pub device: String,
    /// What it said, or why it failed.
    pub result: Result<String, String>,
}

/// Opens every reader once (asking those that can be asked who they are) and connects to the
/// gate I/O once (reading its inputs if any are fitted). Never writes a coil.
pub async fn check(config: &Config) -> Vec<DeviceCheck> {
    let missing = config.missing_ports();
    let mut out = Vec::new();
    for (i, r) in config.readers.iter().enumerate() {
        let key = format!("readers[{i}].port");
        let result = match missing.iter().find(|p| p.key == key) {
            Some(problem) => Err(problem.to_string()),
            None => {
                let settings = reader_settings(r);
                match tokio::time::timeout(CHECK_TIMEOUT, readers::check(&settings)).await {
                    Ok(Ok(info)) => Ok(info.to_string()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(_) => Err(format!("no answer within {CHECK_TIMEOUT:?}")),
                }
            }
        };
        out.push(DeviceCheck {
            device: format!("readers[{i}] ({})", r.name),
            result,
        });
    }
    if let Some(g) = &config.gate_io {
        let settings = gate_io_settings(g);
        let transport = settings.transport.to_string();
        let result = tokio::time::timeout(CHECK_TIMEOUT, async {
            let mut io = GateIo::connect(settings).await?;
            match g.map.input_block() {
                None => Ok(format!("{transport}: connected")),
                Some(_) => {
                    let inputs = io.read_inputs().await?;
                    Ok(format!("{transport}: connected; {}", inputs_text(&inputs)))
                }
            }
        })
        .await
        .unwrap_or_else(|_| {
            Err(GateIoError::Timeout {
                op: "check",
                after: CHECK_TIMEOUT,
            })
        })
        .map_err(|e: GateIoError| e.to_string());
        out.push(DeviceCheck {
            device: "gate_io".into(),
            result,
        });
    }
    out
}

/// The photo-eyes and door contact as people say them: "inner beam clear, outer beam broken".
fn inputs_text(inputs: &GateInputs) -> String {
    let beam = |side: &str, b: Option<Beam>| {
        b.map(|b| match b {
            Beam::Intact => format!("{side} beam clear"),
            Beam::Broken => format!("{side} beam broken"),
        })
    };
    let door = inputs.door.map(|d| match d {
        Door::Closed => "door closed".to_owned(),
        Door::Open => "door open".to_owned(),
    });
    let parts: Vec<String> = [
        beam("inner", inputs.inner_beam),
        beam("outer", inputs.outer_beam),
        door,
    ]
    .into_iter()
    .flatten()
    .collect();
    if parts.is_empty() {
        "no inputs fitted".to_owned()
    } else {
        parts.join(", ")
    }
}

/// The role as the summary line names it.
pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Gate => "gate",
        Role::Cabinet => "cabinet",
        Role::Desk => "desk",
    }
}

/// Contacts the server: does it answer, is its key the pinned one, does it know this device
/// with this key. Two lines, `server` and `registration` (one when the server is unreachable).
pub async fn check_server(config: &Config, key: DeviceKey) -> Vec<DeviceCheck> {
    let public = key.public_key();
    let line = |device: &str, result| DeviceCheck {
        device: device.to_owned(),
        result,
    };
    let uplink = match Uplink::new(
        &config.server,
        &config.device_id,
        key,
        config.server_public_key,
    ) {
        Ok(uplink) => uplink.with_request_timeout(config.uplink.request_timeout()),
        Err(e) => return vec![line("server", Err(e.to_string()))],
    };
    let server = &config.server;
    let server_key = match uplink.fetch_server_key().await {
        Ok(key) => key,
        Err(e) => {
            return vec![line(
                "server",
                Err(format!("{server} cannot be reached: {e}")),
            )];
        }
    };
    let pin = match config.server_public_key {
        Some(pin) if pin == server_key => Ok(format!(
            "{server} answers; its key matches server_public_key"
        )),
        Some(pin) => Err(format!(
            "{server} answers with key {server_key}, but server_public_key pins {pin}: its \
             verdicts and gate policies would be refused (pin the right key, or point server at \
             the right server)"
        )),
        None => Ok(format!(
            "{server} answers with key {server_key}; server_public_key is not set, so its \
             verdicts and policies cannot be trusted: pin this key after checking it with the \
             server's operator"
        )),
    };
    let id = &config.device_id;
    let registration = match uplink.probe_registration().await {
        Ok(Registration::Registered) => Ok(format!("device {id} is registered with this key")),
        Ok(Registration::Unknown) => Err(format!(
            "the server does not accept device {id} with this key: register public key {public} \
             (admin, POST /api/v1/devices), or it was revoked or registered with another key"
        )),
        Ok(Registration::ClockSkew) => Err(format!(
            "device {id} is registered, but this machine's clock is too far from the server's: \
             set the time (NTP)"
        )),
        Err(e) => Err(e.to_string()),
    };
    vec![line("server", pin), line("registration", registration)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inputs_read_as_words() {
        let inputs = GateInputs {
            inner_beam: Some(Beam::Intact),
            outer_beam: Some(Beam::Broken),
            door: None,
        };
        assert_eq!(inputs_text(&inputs), "inner beam clear, outer beam broken");
        let none = GateInputs {
            inner_beam: None,
            outer_beam: None,
            door: None,
        };
        assert_eq!(inputs_text(&none), "no inputs fitted");
    }
}
