//! Choosing the compute device from `--device auto|cpu|cuda[:N]`.

use crate::error::{GmsError, Result};
use candle_core::Device;

/// Parses a `--device` value and opens the device.
///
/// `auto` takes the first CUDA GPU when this binary was built with CUDA and one answers, else
/// the CPU.
pub fn open_device(spec: &str) -> Result<Device> {
    let bad = |problem: String| GmsError::BadArgument {
        flag: "--device",
        value: spec.to_string(),
        problem,
    };
    match spec {
        "cpu" => Ok(Device::Cpu),
        "auto" => Ok(cuda(0).unwrap_or(Device::Cpu)),
        s if s == "cuda" || s.starts_with("cuda:") => {
            let ordinal = match s.strip_prefix("cuda:") {
                Some(n) => n.parse::<usize>().map_err(|_| bad("expected cuda:N with N a GPU number".into()))?,
                None => 0,
            };
            if !candle_core::utils::cuda_is_available() {
                return Err(bad(
                    "this gms was built without CUDA; build it with scripts/build-cuda.sh or use --device cpu".into(),
                ));
            }
            cuda(ordinal).map_err(|e| bad(format!("cannot open GPU {ordinal} ({e})")))
        }
        _ => Err(bad("expected auto, cpu, cuda or cuda:N".into())),
    }
}

fn cuda(ordinal: usize) -> std::result::Result<Device, candle_core::Error> {
    if !candle_core::utils::cuda_is_available() {
        return Err(candle_core::Error::Msg("built without CUDA".into()));
    }
    Device::new_cuda(ordinal)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_specs() {
        assert!(matches!(open_device("cpu"), Ok(Device::Cpu)));
        assert!(open_device("auto").is_ok());
        assert!(open_device("gpu").unwrap_err().to_string().contains("expected auto"));
        if !candle_core::utils::cuda_is_available() {
            assert!(open_device("cuda:0").unwrap_err().to_string().contains("without CUDA"));
        }
    }
}
