//! Modbus data tables with the checks of the Modbus application protocol (V1.1b3, section 6).
//!
//! The spec checks a request in this order: function code supported (else exception 01,
//! IllegalFunction), quantity within the function's limits (else 03, IllegalDataValue), start
//! address plus quantity within the device (else 02, IllegalDataAddress). The devices here call
//! these helpers after matching the function code.

use std::ops::Range;

use tokio_modbus::{Address, ExceptionCode, Quantity};

/// "Quantity of Coils: 1 to 2000 (0x7D0)" (0x01) and "Quantity of Inputs" (0x02).
pub const MAX_READ_BITS: Quantity = 0x07D0;
/// "Quantity of Outputs: 1 to 1968 (0x07B0)" (0x0F).
pub const MAX_WRITE_BITS: Quantity = 0x07B0;
/// "Quantity of Registers: 1 to 125 (0x7D)" (0x03, 0x04).
pub const MAX_READ_REGISTERS: Quantity = 0x007D;
/// "Quantity of Registers: 1 to 123 (0x7B)" (0x10).
pub const MAX_WRITE_REGISTERS: Quantity = 0x007B;

/// The index range `addr .. addr + quantity` of a table of `len` entries, checked as the spec
/// orders: quantity first, address second.
///
/// # Errors
/// `IllegalDataValue` for a quantity of 0 or above `max`; `IllegalDataAddress` for a range that
/// does not fit in the table.
pub fn checked_range(
    addr: Address,
    quantity: usize,
    max: Quantity,
    len: usize,
) -> Result<Range<usize>, ExceptionCode> {
    if quantity == 0 || quantity > usize::from(max) {
        return Err(ExceptionCode::IllegalDataValue);
    }
    let start = usize::from(addr);
    let end = start + quantity;
    if end > len {
        return Err(ExceptionCode::IllegalDataAddress);
    }
    Ok(start..end)
}

/// The index of a single coil or register, checked against a table of `len` entries.
///
/// # Errors
/// `IllegalDataAddress` if `addr` is outside the table.
pub fn checked_index(addr: Address, len: usize) -> Result<usize, ExceptionCode> {
    let index = usize::from(addr);
    if index < len {
        Ok(index)
    } else {
        Err(ExceptionCode::IllegalDataAddress)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantity_is_checked_before_address() {
        assert_eq!(checked_range(0, 8, MAX_READ_BITS, 8), Ok(0..8));
        assert_eq!(checked_range(7, 1, MAX_READ_BITS, 8), Ok(7..8));
        assert_eq!(
            checked_range(7, 2, MAX_READ_BITS, 8),
            Err(ExceptionCode::IllegalDataAddress)
        );
        assert_eq!(
            checked_range(u16::MAX, 1, MAX_READ_BITS, 8),
            Err(ExceptionCode::IllegalDataAddress)
        );
        assert_eq!(
            checked_range(100, 0, MAX_READ_BITS, 8),
            Err(ExceptionCode::IllegalDataValue)
        );
        assert_eq!(
            checked_range(0, 126, MAX_READ_REGISTERS, 1000),
            Err(ExceptionCode::IllegalDataValue)
        );
        assert_eq!(checked_index(3, 4), Ok(3));
        assert_eq!(checked_index(4, 4), Err(ExceptionCode::IllegalDataAddress));
    }
}
