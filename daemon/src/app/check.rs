//! `custosd check`: open every configured device once and say what answered.

use super::CHECK_TIMEOUT;
use super::settings::{gate_io_settings, reader_settings};
use crate::actuators::{GateIo, GateIoError};
use crate::config::Config;
use crate::readers;

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
                    Ok(format!("{transport}: connected; inputs {inputs:?}"))
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
