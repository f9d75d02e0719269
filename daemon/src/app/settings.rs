//! From the configuration to the settings of each part: reader drivers, the gate I/O link,
//! the smoothers.

use crate::actuators::{GateIoSettings, Transport};
use crate::config::{
    Config, GateIoConfig, GateIoTransport, Placement, ReaderConfig,
    SmoothingConfig as SmoothingSettings,
};
use crate::readers::ReaderSettings;
use crate::smoothing::{self, CabinetConfig, DEFAULT_APPEAR_WINDOW_MS, GateConfig};

/// The driver settings of a `[[readers]]` entry (antennas in inventory order: a gate's inner
/// then outer ones).
pub fn reader_settings(r: &ReaderConfig) -> ReaderSettings {
    ReaderSettings {
        name: r.name.clone(),
        protocol: r.protocol,
        port: r.port.clone(),
        baud: r.baud,
        address: r.address,
        antennas: r.antennas_in_order(),
        power_dbm: r.power_dbm,
        reply_timeout: r.reply_timeout,
        poll_interval: r.poll_interval,
        backoff_max: r.backoff_max,
        chafon_form: r.chafon_form,
        network: r.network.clone(),
        keepalive: r.keepalive,
        watchdog: crate::readers::llrp::watchdog_for(r.keepalive),
        gate: matches!(r.placement, Placement::Gate { .. }),
    }
}

/// The gate I/O link settings of `[gate_io]`.
pub fn gate_io_settings(g: &GateIoConfig) -> GateIoSettings {
    GateIoSettings {
        transport: match &g.transport {
            GateIoTransport::Tcp(addr) => Transport::Tcp(*addr),
            GateIoTransport::Rtu { port, baud } => Transport::Rtu {
                port: port.clone(),
                baud: *baud,
            },
        },
        unit: g.unit,
        map: g.map,
        call_timeout: g.call_timeout,
    }
}

fn ms(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// The presence rules of `[smoothing]`.
pub fn presence_config(s: &SmoothingSettings) -> smoothing::SmoothingConfig {
    smoothing::SmoothingConfig {
        min_reads: s.min_reads,
        appear_window_ms: DEFAULT_APPEAR_WINDOW_MS,
        holdoff_ms: ms(s.holdoff_ms),
    }
}

/// The gate smoother settings of a gate reader (`None` unless it has inner and outer
/// antennas). `use_beams` when both photo-eyes are configured.
pub fn gate_config(r: &ReaderConfig, s: &SmoothingSettings, use_beams: bool) -> Option<GateConfig> {
    let Placement::Gate { inner, outer } = &r.placement else {
        return None;
    };
    Some(GateConfig {
        inner_antennas: inner.clone(),
        outer_antennas: outer.clone(),
        smoothing: presence_config(s),
        passage_gap_ms: ms(s.passage_gap_ms),
        use_beams,
    })
}

/// The cabinet smoother settings of `[smoothing]`.
pub fn cabinet_config(s: &SmoothingSettings) -> CabinetConfig {
    CabinetConfig {
        smoothing: presence_config(s),
        ..CabinetConfig::default()
    }
}

/// Whether the gate I/O has both photo-eyes, so direction comes from them.
pub fn uses_beams(config: &Config) -> bool {
    config
        .gate_io
        .as_ref()
        .is_some_and(|g| g.map.inner_beam_input.is_some() && g.map.outer_beam_input.is_some())
        || config.readers.iter().any(|r| r.reader_io.has_beams())
}

#[cfg(test)]
mod tests {
    use std::path::Path;
    use std::time::Duration;

    use custos_protocol::modbus_map::GateIoMap;

    use super::*;
    use crate::config::EXAMPLE_GATE;
    use crate::readers::Protocol;

    fn example() -> Config {
        Config::parse(EXAMPLE_GATE, Path::new("/etc/custosd/gate.toml")).unwrap()
    }

    #[test]
    fn reader_config_maps_to_driver_settings() {
        let c = example();
        let s = reader_settings(&c.readers[0]);
        assert_eq!(&*s.name, "uhf-main");
        assert_eq!(s.protocol, Protocol::UhfA0);
        assert_eq!(s.port, Path::new("/dev/ttyUSB0"));
        assert_eq!((s.baud, s.address), (115_200, 1));
        assert_eq!(s.antennas, [1, 2, 3, 4], "inner then outer");
        assert_eq!(s.power_dbm, None);
        assert_eq!(s.reply_timeout, Duration::from_millis(500));
        assert_eq!(s.poll_interval, Duration::from_millis(50));
        assert_eq!(s.backoff_max, Duration::from_secs(5));
        assert!(s.validate().is_ok());
        let cabinet = Config::parse(
            include_str!("../../examples/cabinet.toml"),
            Path::new("cabinet.toml"),
        )
        .unwrap();
        let shelf = reader_settings(&cabinet.readers[0]);
        assert_eq!(shelf.protocol, Protocol::UhfChafon);
        assert_eq!((shelf.baud, shelf.address), (57_600, 0));
        assert!(shelf.chafon_form.is_some());
        let scanner = reader_settings(&cabinet.readers[1]);
        assert_eq!(scanner.protocol, Protocol::Barcode);
        assert!(scanner.antennas.is_empty());
    }

    #[test]
    fn gate_io_config_maps_to_link_settings() {
        let c = example();
        let g = gate_io_settings(c.gate_io.as_ref().unwrap());
        assert_eq!(
            g.transport,
            Transport::Tcp("127.0.0.1:5020".parse().unwrap())
        );
        assert_eq!(g.unit, 1);
        assert_eq!(g.call_timeout, Duration::from_millis(500));
        assert_eq!(g.map.lock_coil, Some(2));
        assert!(uses_beams(&c));
        let rtu = GateIoConfig {
            transport: GateIoTransport::Rtu {
                port: "/dev/ttyS1".into(),
                baud: 19_200,
            },
            unit: 7,
            map: GateIoMap {
                inner_beam_input: None,
                ..GateIoMap::default()
            },
            call_timeout: Duration::from_millis(300),
        };
        let g = gate_io_settings(&rtu);
        assert_eq!(
            g.transport,
            Transport::Rtu {
                port: "/dev/ttyS1".into(),
                baud: 19_200
            }
        );
        assert_eq!((g.unit, g.call_timeout), (7, Duration::from_millis(300)));
        let mut one_beam = example();
        one_beam.gate_io = Some(rtu);
        assert!(
            !uses_beams(&one_beam),
            "one photo-eye cannot give a direction"
        );
    }

    #[test]
    fn smoothing_config_maps_to_the_smoothers() {
        let mut c = example();
        c.smoothing.holdoff_ms = 700;
        c.smoothing.passage_gap_ms = 900;
        c.smoothing.min_reads = 3;
        let g = gate_config(&c.readers[0], &c.smoothing, true).unwrap();
        assert_eq!(
            (g.inner_antennas, g.outer_antennas),
            (vec![1, 2], vec![3, 4])
        );
        assert_eq!(g.smoothing.holdoff_ms, 700);
        assert_eq!(g.smoothing.min_reads, 3);
        assert_eq!(g.passage_gap_ms, 900);
        assert!(g.use_beams);
        assert_eq!(cabinet_config(&c.smoothing).smoothing.holdoff_ms, 700);
        c.smoothing.holdoff_ms = u64::MAX;
        assert_eq!(presence_config(&c.smoothing).holdoff_ms, i64::MAX);
        let mut scanner = c.readers[0].clone();
        scanner.placement = Placement::Scanner;
        assert!(gate_config(&scanner, &c.smoothing, false).is_none());
    }
}
