//! SIGINT and SIGTERM for the App, watched on a thread of their own so that a
//! second signal still forces an exit when the actix thread is stuck (a handler
//! blocking it, a shutdown that does not finish).

use std::sync::Arc;

use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

/// The exit status of a process whose graceful shutdown a second SIGINT or
/// SIGTERM cut short: 130 (128 + SIGINT), as shells report an interrupt.
pub const FORCED_EXIT_STATUS: i32 = 130;

/// Stops the watching thread when dropped (the App ended).
pub(crate) struct SignalWatch {
    _stop: watch::Sender<()>,
}

/// Starts watching: the first signal sets `shutdown`; the second exits the
/// process at once with [`FORCED_EXIT_STATUS`]. Returns once the handlers are in
/// place, so no signal sent after it is missed.
pub(crate) fn watch(shutdown: Arc<watch::Sender<bool>>) -> std::io::Result<SignalWatch> {
    let (stop, mut stopped) = watch::channel(());
    let (ready_tx, ready) = std::sync::mpsc::channel::<std::io::Result<()>>();
    std::thread::Builder::new()
        .name("ekafka-signals".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_current_thread()
                .enable_io()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = ready_tx.send(Err(e));
                    return;
                }
            };
            runtime.block_on(async move {
                let (mut terminate, mut interrupt) = match (
                    signal(SignalKind::terminate()),
                    signal(SignalKind::interrupt()),
                ) {
                    (Ok(t), Ok(i)) => (t, i),
                    (Err(e), _) | (_, Err(e)) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                let _ = ready_tx.send(Ok(()));
                let mut received = 0;
                loop {
                    let name = tokio::select! {
                        _ = terminate.recv() => "SIGTERM",
                        _ = interrupt.recv() => "SIGINT",
                        _ = stopped.changed() => return,
                    };
                    received += 1;
                    if received == 1 {
                        tracing::info!(
                            signal = name,
                            "shutting down gracefully; send it again to force an exit"
                        );
                        shutdown.send_replace(true);
                    } else {
                        tracing::error!(
                            signal = name,
                            "second signal: exiting now, abandoning work in flight"
                        );
                        eprintln!("[ekafka] second {name}: forced exit");
                        std::process::exit(FORCED_EXIT_STATUS);
                    }
                }
            });
        })?;
    ready
        .recv()
        .unwrap_or_else(|_| Err(std::io::Error::other("the signal thread ended early")))?;
    Ok(SignalWatch { _stop: stop })
}
