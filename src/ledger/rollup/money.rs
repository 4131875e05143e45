//! Exact money in integer columns, for SQLite (which has no decimal type): an amount is
//! whole micro-dollars plus the remainder in femto-dollars (`0 <= femto < 10^9`), so it
//! is exact to 10^-15 USD, which is every cost a validated catalog can produce (prices
//! have at most 9 decimal places per million tokens; see `catalog`). Sums of
//! either part fit an `i64` at any realistic scale and are recombined as `Decimal`.
//! PostgreSQL stores the same quantised amounts as `NUMERIC`.

use rust_decimal::{Decimal, RoundingStrategy};

/// Decimal places money keeps in rollups: femto-dollars.
pub const SCALE: u32 = 15;
/// Femto-dollars per micro-dollar.
pub const FEMTOS_PER_MICRO: i64 = 1_000_000_000;

/// The largest amount one record may add: `i64::MAX` micro-dollars (about 9.2e12 USD).
/// Anything beyond is not a cost a catalog can produce; clamping it keeps both backends
/// agreeing and no sum overflowing.
fn cap() -> Decimal {
    Decimal::from_i128_with_scale(i128::from(i64::MAX), 6)
}

/// `amount` as rollups keep it: floored to femto-dollars (a no-op for any cost priced
/// from a validated catalog) and clamped to [`cap`] either way.
pub fn quantize(amount: Decimal) -> Decimal {
    let c = cap();
    amount
        .round_dp_with_strategy(SCALE, RoundingStrategy::ToNegativeInfinity)
        .clamp(-c, c)
        .normalize()
}

/// A quantised amount as (micro-dollars, femto-dollars); the femto part is in
/// `[0, 10^9)`, also for negative amounts (floor division).
pub fn to_parts(amount: Decimal) -> (i64, i64) {
    let q = quantize(amount);
    let shift = 10_i128.pow(SCALE.saturating_sub(q.scale()));
    let femtos = q.mantissa().saturating_mul(shift);
    let per_micro = i128::from(FEMTOS_PER_MICRO);
    let micros = i64::try_from(femtos.div_euclid(per_micro)).unwrap_or(i64::MAX);
    let rest = i64::try_from(femtos.rem_euclid(per_micro)).unwrap_or(0);
    (micros, rest)
}

/// Recombine summed parts (each possibly beyond `i64` once summed). Saturates at
/// `Decimal::MAX` rather than fail, which only sums beyond ~7.9e13 USD can reach.
pub fn from_parts(micros: i128, femtos: i128) -> Decimal {
    let per_micro = i128::from(FEMTOS_PER_MICRO);
    let total = micros
        .checked_mul(per_micro)
        .and_then(|m| m.checked_add(femtos));
    if let Some(d) = total.and_then(|t| Decimal::try_from_i128_with_scale(t, SCALE).ok()) {
        return d.normalize();
    }
    let whole = Decimal::try_from_i128_with_scale(micros, 6).unwrap_or(Decimal::MAX);
    let part = Decimal::try_from_i128_with_scale(femtos, SCALE).unwrap_or(Decimal::MAX);
    whole.checked_add(part).unwrap_or(Decimal::MAX).normalize()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn parts_are_exact_to_the_femto_dollar_and_round_trip() {
        for d in [
            dec!(0),
            dec!(0.000000000000001),
            dec!(0.170595),
            dec!(1.234567891234567),
            dec!(12345.678901234567),
            dec!(-0.5),
        ] {
            let (m, f) = to_parts(d);
            assert!((0..FEMTOS_PER_MICRO).contains(&f), "{d}");
            assert_eq!(from_parts(m.into(), f.into()), quantize(d), "{d}");
        }
        assert_eq!(to_parts(dec!(1.234567891234567)), (1_234_567, 891_234_567));
        assert_eq!(to_parts(dec!(-0.5)), (-500_000, 0));
        assert_eq!(
            quantize(dec!(0.1234567890123456789)),
            dec!(0.123456789012345)
        );
    }

    #[test]
    fn sums_of_parts_equal_the_decimal_sum() {
        let amounts = [dec!(0.999999999999999), dec!(0.000000000000001), dec!(7.5)];
        let (m, f) = amounts.iter().fold((0_i128, 0_i128), |(m, f), d| {
            let (a, b) = to_parts(*d);
            (m + i128::from(a), f + i128::from(b))
        });
        assert_eq!(from_parts(m, f), dec!(8.5));
    }

    #[test]
    fn absurd_amounts_clamp_instead_of_failing() {
        assert_eq!(to_parts(Decimal::MAX), (i64::MAX, 0));
        assert_eq!(from_parts(i128::MAX, 0), Decimal::MAX);
    }
}
