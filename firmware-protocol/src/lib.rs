//! Sans-IO codecs for the hardware and messages of Custos.
//!
//! This crate never does I/O: no sockets, no serial ports, no clocks, no threads. Every decoder
//! takes a byte slice and answers with a frame and how many bytes it used, "need more", or a
//! typed error that tells the caller how many bytes to drop to resynchronise (see [`codec`]).
//! Encoders write into a caller's buffer. That keeps the protocols testable on recorded bytes,
//! usable by the daemon, the server and the simulator alike, and portable to reader firmware.
//!
//! Modules:
//! - [`codec`]: the decode outcome shared by every decoder and a bounded stream reassembler.
//! - [`uhf`]: UHF readers of the 0xA0 family (R2000/Indy modules).
//! - [`chafon`]: UHF readers of the CHAFON / UHFReader18 / UHFReader288 family.
//! - [`llrp`]: the GS1 Low Level Reader Protocol of fixed UHF readers (LLRP 1.1, TCP 5084).
//! - [`em4100`]: 125 kHz EM4100 serial card modules (RDM6300 family).
//! - [`barcode`]: barcode scanner lines and the Custos carrier label.
//! - [`epc`]: Gen2 PC word and tag CRC, GS1 Tag Data Standard 96-bit schemes.
//! - [`modbus_map`]: typed register maps of the gate I/O module and Modbus RFID readers.
//! - [`uplink`]: the messages between daemon and server, and the exact bytes that are signed.
#![warn(missing_docs)]

pub mod barcode;
pub mod chafon;
pub mod cli_text;
pub mod codec;
pub mod em4100;
pub mod epc;
pub mod llrp;
pub mod modbus_map;
pub mod uhf;
pub mod uplink;
