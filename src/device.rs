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
        "auto" => {
            let device = cuda(0).unwrap_or(Device::Cpu);
            tracing::info!(device = %describe(&device), "--device auto chose");
            Ok(device)
        }
        s if s == "cuda" || s.starts_with("cuda:") => {
            let ordinal = match s.strip_prefix("cuda:") {
                Some(n) => n
                    .parse::<usize>()
                    .map_err(|_| bad("expected cuda:N with N a GPU number".into()))?,
                None => 0,
            };
            if !candle_core::utils::cuda_is_available() {
                return Err(bad(
                    "this gms was built without CUDA; build it with scripts/build-cuda.sh or use --device cpu".into(),
                ));
            }
            cuda(ordinal).map_err(|e| {
                // candle appends a backtrace to driver errors; one line is enough here.
                let e = e.to_string();
                let reason = e.lines().next().unwrap_or("no reason given");
                bad(format!(
                    "cannot open GPU {ordinal} ({reason}); check nvidia-smi or use --device cpu"
                ))
            })
        }
        _ => Err(bad("expected auto, cpu, cuda or cuda:N".into())),
    }
}

/// Names a device for status lines and logs: `cpu (2 threads)` or
/// `cuda:0 (NVIDIA H100 80GB HBM3, 79.1 GiB)`.
pub fn describe(device: &Device) -> String {
    match device {
        Device::Cpu => format!(
            "cpu ({} threads)",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        ),
        Device::Cuda(_) => {
            let ordinal = match device.location() {
                candle_core::DeviceLocation::Cuda { gpu_id } => gpu_id,
                _ => 0,
            };
            match gpu_info(device) {
                Some((name, total)) => format!(
                    "cuda:{ordinal} ({name}, {:.1} GiB)",
                    total as f64 / (1u64 << 30) as f64
                ),
                None => format!("cuda:{ordinal}"),
            }
        }
        Device::Metal(_) => "metal".to_string(),
    }
}

/// Free memory of a GPU in bytes; `None` on the CPU or when the driver cannot tell.
pub fn free_memory(device: &Device) -> Option<usize> {
    #[cfg(feature = "cuda")]
    if let Device::Cuda(d) = device {
        return d
            .cuda_stream()
            .context()
            .mem_get_info()
            .ok()
            .map(|(free, _)| free);
    }
    let _ = device;
    None
}

/// Name and total memory of a GPU.
fn gpu_info(device: &Device) -> Option<(String, usize)> {
    #[cfg(feature = "cuda")]
    if let Device::Cuda(d) = device {
        let ctx = d.cuda_stream().context().clone();
        return Some((ctx.name().ok()?, ctx.total_mem().ok()?));
    }
    let _ = device;
    None
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
        assert!(open_device("gpu")
            .unwrap_err()
            .to_string()
            .contains("expected auto"));
        if !candle_core::utils::cuda_is_available() {
            assert!(open_device("cuda:0")
                .unwrap_err()
                .to_string()
                .contains("without CUDA"));
        }
    }
}
