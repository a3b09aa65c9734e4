//! CPU threading: batches side by side rather than each op split across cores.
//!
//! candle splits every CPU op over its threads and joins them at a spinning barrier. For the
//! many small ops of an encoder on short rows, that join dominates as soon as another process
//! takes a core: on the 2-core kit machine the search ran *faster* on one thread (43 s) than on
//! two (57 s). Running whole batches on separate threads, each op single-threaded, has no
//! per-op join. The binary opts in with [`single_threaded_ops`] before any thread starts;
//! library users (and tests) keep candle's default.

use crate::error::Result;
use candle_core::Device;

/// Makes candle run each CPU op on one thread (via `RAYON_NUM_THREADS`, which candle reads at
/// every op), unless the user set it. Must run before any other thread exists.
pub fn single_threaded_ops() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // SAFETY-relevant: called at the top of `main`, while the process has one thread, so
        // no concurrent getenv can race this setenv.
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
}

/// How many batches to run side by side on `device`: the cores, when candle runs CPU ops on
/// one thread; else 1 (candle already spreads each op, or the GPU does).
pub fn batch_workers(device: &Device) -> usize {
    if device.is_cpu() && candle_core::utils::get_num_threads() == 1 {
        std::thread::available_parallelism().map_or(1, |n| n.get())
    } else {
        1
    }
}

/// Applies `f` to every item, up to `workers` at a time, keeping the order of `items`.
pub fn map_parallel<I: Sync, T: Send>(
    items: &[I],
    workers: usize,
    f: impl Fn(&I) -> Result<T> + Sync,
) -> Result<Vec<T>> {
    if workers <= 1 || items.len() <= 1 {
        return items.iter().map(&f).collect();
    }
    let f = &f;
    std::thread::scope(|s| {
        let handles: Vec<_> = items
            .chunks(items.len().div_ceil(workers))
            .map(|chunk| s.spawn(move || chunk.iter().map(f).collect::<Result<Vec<T>>>()))
            .collect();
        let mut out = Vec::with_capacity(items.len());
        for h in handles {
            out.extend(h.join().expect("a batch worker panicked")?);
        }
        Ok(out)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_order_and_errors() {
        let items: Vec<usize> = (0..10).collect();
        let out = map_parallel(&items, 3, |&i| Ok(i * 2)).unwrap();
        assert_eq!(out, (0..10).map(|i| i * 2).collect::<Vec<_>>());
        let err = map_parallel(&items, 2, |&i| {
            if i == 7 {
                Err(crate::GmsError::output("x", "boom"))
            } else {
                Ok(i)
            }
        });
        assert!(err.is_err());
    }
}
