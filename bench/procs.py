"""CPU seconds and peak RSS of the service processes (and of Kafka and PostgreSQL when this run started them)."""

import threading

import psutil


class Monitor:
    def __init__(self, stack) -> None:
        self._stack = stack
        self.peak_rss: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _groups(self) -> dict[str, list[psutil.Process]]:
        groups: dict[str, list[psutil.Process]] = {}
        for name, processes in self._stack.processes.items():
            groups[name] = [psutil.Process(p.pid) for p in processes if p.poll() is None]
        for name, pid in self._stack.infra_pids.items():
            try:
                root = psutil.Process(pid)
                groups[name] = [root, *root.children(recursive=True)]
            except psutil.Error:
                pass
        return groups

    def cpu(self) -> dict[str, float]:
        """CPU seconds (user + system) used so far, per service (replicas summed)."""
        totals: dict[str, float] = {}
        for name, processes in self._groups().items():
            for p in processes:
                try:
                    t = p.cpu_times()
                    totals[name] = totals.get(name, 0.0) + t.user + t.system
                except psutil.Error:
                    pass
        return totals

    def _sample(self) -> None:
        while not self._stop.wait(0.5):
            for name, processes in self._groups().items():
                rss = 0
                for p in processes:
                    try:
                        rss = max(rss, p.memory_info().rss)  # per process: replicas are separate footprints
                    except psutil.Error:
                        pass
                self.peak_rss[name] = max(self.peak_rss.get(name, 0), rss)

    def start(self) -> "Monitor":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()


def per_thousand(before: dict[str, float], after: dict[str, float], operations: int) -> dict[str, float]:
    if operations <= 0:
        return {}
    return {name: round((after[name] - before.get(name, 0.0)) * 1000 / operations, 3)
            for name in after if after[name] - before.get(name, 0.0) > 0.005}
