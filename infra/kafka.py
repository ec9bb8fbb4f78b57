"""A single-node KRaft Apache Kafka broker from the official jars on Maven Central.

`python -m infra.kafka fetch|start|stop|status|topics`. The jars are fetched once by Maven into
`.cache/kafka/libs` (a second fetch finds them and does nothing); storage is formatted once
under `DATA_DIR/kafka`; the broker listens on 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import base64
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.lifetime import die_with_parent
from services.net import port_open
from services.settings import Settings, get_settings
from services.topics import ALL_TOPICS, Retention, TopicSpec

log = logging.getLogger("infra.kafka")

ROOT = Path(__file__).resolve().parent.parent
POM = ROOT / "infra" / "kafka" / "pom.xml"
LOG4J2_CONFIG = ROOT / "infra" / "kafka" / "log4j2.properties"
LIBS = ROOT / ".cache" / "kafka" / "libs"
# The broker jar names the version; its presence means the fetch is complete.
STAMP = LIBS / ".fetched"


class KafkaError(RuntimeError):
    pass


def fetch(quiet: bool = True) -> Path:
    """Copy the broker and its runtime dependencies from Maven Central, once."""
    if STAMP.exists() and STAMP.read_text() == POM.read_text():
        return LIBS
    LIBS.mkdir(parents=True, exist_ok=True)
    cmd = [
        "mvn",
        "-B",
        "-f",
        str(POM),
        "dependency:copy-dependencies",
        f"-DoutputDirectory={LIBS}",
        "-DincludeScope=runtime",
    ]
    if quiet:
        cmd.insert(1, "-q")
    log.info("fetching Apache Kafka jars with Maven into %s", LIBS)
    subprocess.run(cmd, check=True)
    STAMP.write_text(POM.read_text())
    return LIBS


def _kafka_uuid() -> str:
    # Kafka's Uuid text form: URL-safe base64 of 16 bytes, unpadded. Like Kafka's own
    # Uuid.randomUuid, never one starting with "-", which a command line takes for an option.
    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


@dataclass
class Broker:
    """One local broker: its folder, ports and, once started, its process."""

    data_dir: Path
    port: int
    controller_port: int
    host: str = "127.0.0.1"
    heap: str = "768m"
    process: subprocess.Popen[bytes] | None = None
    # Outlives the process that started it (`make kafka-start`); otherwise it gets SIGTERM when
    # that process dies without stopping it (infra/lifetime.py).
    detached: bool = False

    @classmethod
    def from_settings(cls, settings: Settings) -> Broker:
        return cls(settings.kafka_dir, settings.kafka_port, settings.kafka_controller_port)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def pid_file(self) -> Path:
        return self.data_dir / "broker.pid"

    @property
    def properties_file(self) -> Path:
        return self.data_dir / "server.properties"

    @property
    def log_dir(self) -> Path:
        return self.data_dir / "logs"

    def _write_properties(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        props = {
            "process.roles": "broker,controller",
            "node.id": "1",
            "controller.quorum.bootstrap.servers": f"{self.host}:{self.controller_port}",
            "listeners": (
                f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}"
            ),
            "advertised.listeners": (
                f"PLAINTEXT://{self.host}:{self.port},CONTROLLER://{self.host}:{self.controller_port}"
            ),
            "controller.listener.names": "CONTROLLER",
            "inter.broker.listener.name": "PLAINTEXT",
            "listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
            "log.dirs": str((self.data_dir / "data").resolve()),
            "num.partitions": "1",
            # Topics are created from services.topics, never by a typo in a producer.
            "auto.create.topics.enable": "false",
            "offsets.topic.replication.factor": "1",
            "offsets.topic.num.partitions": "10",
            "transaction.state.log.replication.factor": "1",
            "transaction.state.log.min.isr": "1",
            "share.coordinator.state.topic.replication.factor": "1",
            "share.coordinator.state.topic.min.isr": "1",
            "group.initial.rebalance.delay.ms": "0",
            "log.cleaner.min.compaction.lag.ms": "0",
        }
        text = "".join(f"{k}={v}\n" for k, v in props.items())
        self.properties_file.write_text(text)

    def _java(self, main: str, *args: str, extra: list[str] | None = None) -> list[str]:
        return [
            "java",
            *(extra or []),
            f"-Dlog4j2.configurationFile={LOG4J2_CONFIG}",
            f"-Dkafka.logs.dir={self.log_dir.resolve()}",
            "-cp",
            str(LIBS / "*"),
            main,
            *args,
        ]

    def format_storage(self) -> None:
        self._write_properties()
        if (self.data_dir / "data" / "meta.properties").exists():
            return
        self.log_dir.mkdir(parents=True, exist_ok=True)
        cmd = self._java(
            "kafka.tools.StorageTool",
            "format",
            f"--cluster-id={_kafka_uuid()}",
            "-c",
            str(self.properties_file),
            "--standalone",
            extra=["-Xmx256m"],
        )
        res = subprocess.run(cmd, capture_output=True, text=True)
        if res.returncode != 0:
            raise KafkaError(f"formatting Kafka storage failed: {res.stdout}{res.stderr}")

    def start(self, timeout_s: float = 90.0) -> None:
        for p in (self.port, self.controller_port):
            if port_open(self.host, p):
                raise KafkaError(
                    f"something already listens on {self.host}:{p}; it was not started by "
                    f"this project's run, so it is not reused. Stop it, or set KAFKA_PORT and "
                    f"KAFKA_CONTROLLER_PORT to free ports."
                )
        fetch()
        self.format_storage()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        cmd = self._java(
            "kafka.Kafka",
            str(self.properties_file),
            extra=["-Xms128m", f"-Xmx{self.heap}", "-XX:+UseG1GC", "-Djava.awt.headless=true"],
        )
        stdout = (self.log_dir / "stdout.log").open("ab")
        # Its own process group: a Ctrl-C in the terminal reaches the runner, which then stops
        # the broker in order instead of the JVM dying mid-write.
        # And gone with its parent, should the parent die without stopping it (unless detached;
        # the preexec function is async-signal-safe: infra/lifetime.py).
        self.process = subprocess.Popen(
            cmd,
            stdout=stdout,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=None if self.detached else die_with_parent(),
        )
        self.pid_file.write_text(str(self.process.pid))
        self.wait_ready(timeout_s)

    def wait_ready(self, timeout_s: float) -> None:
        from kafka import KafkaAdminClient

        deadline = time.monotonic() + timeout_s
        last: Exception | None = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise KafkaError(
                    f"the broker exited with {self.process.returncode}; see {self.log_dir}/server.log"
                )
            if port_open(self.host, self.port):
                try:
                    admin = KafkaAdminClient(
                        bootstrap_servers=self.bootstrap, request_timeout_ms=3000
                    )
                    try:
                        admin.list_topics()
                        return
                    finally:
                        admin.close()
                except Exception as exc:  # not ready yet: the controller is still electing
                    last = exc
            time.sleep(0.3)
        raise KafkaError(f"the broker did not answer within {timeout_s:.0f}s: {last}")

    def stop(self, timeout_s: float = 30.0) -> None:
        pid: int | None = None
        if self.process is not None:
            pid = self.process.pid
        elif self.pid_file.exists():
            pid = int(self.pid_file.read_text().strip() or 0) or None
        if pid is None:
            return
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        else:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and _alive(pid, self.process):
                time.sleep(0.1)
            if _alive(pid, self.process):
                log.warning("broker did not stop within %.0fs; killing it", timeout_s)
                os.kill(pid, signal.SIGKILL)
                if self.process is not None:
                    self.process.wait()
        self.process = None
        self.pid_file.unlink(missing_ok=True)


def _alive(pid: int, proc: subprocess.Popen[bytes] | None) -> bool:
    if proc is not None:
        return proc.poll() is None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


_TOPIC_ALREADY_EXISTS = 36


def create_topics(
    bootstrap: str,
    prefix: str = "",
    specs: tuple[TopicSpec, ...] = ALL_TOPICS,
    retention: Retention | None = None,
) -> None:
    """Create the declared topics; existing ones are left as they are, except that a retained
    topic's `retention.ms` is set to what the retention settings say now (`retention`: the
    settings' defaults when not given), so a changed setting reaches the log at the next
    deploy, as it reaches the warehouse's TTLs at the next migrate step."""
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic
    from kafka.errors import KafkaTimeoutError

    admin = KafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10000)
    try:
        existing = set(admin.list_topics())
        new = [
            NewTopic(
                name=f"{prefix}{s.name}",
                num_partitions=s.partitions,
                replication_factor=1,
                topic_configs=s.kafka_configs(retention),
            )
            for s in specs
            if f"{prefix}{s.name}" not in existing
        ]
        if new:
            result = admin.create_topics(new, validate_only=False, raise_errors=False)
            for t in result["topics"]:
                if t["error_code"] == _TOPIC_ALREADY_EXISTS:
                    # Created meanwhile by another process (or not yet in the metadata the
                    # list came from): an existing topic, whose retention is enforced below.
                    existing.add(t["name"])
                elif t["error_code"] != 0:
                    raise KafkaError(f"could not create {t['name']}: {t['error_message']}")
            # Ready (in the metadata, partitions led) before anyone uses or describes them; a
            # slow broker only delays that, so a wait that runs out is not a failure.
            try:
                admin.wait_for_topics([t.name for t in new], timeout_ms=60_000)
            except KafkaTimeoutError:
                log.warning("new topics not all in the metadata after 60 s; going on")
        retained = [s for s in specs if s.retained_as and f"{prefix}{s.name}" in existing]
        if retained:
            enforce_retention(admin, prefix, retained, retention)
    finally:
        admin.close()


def topic_configs(admin: Any, names: list[str], keys: list[str]) -> dict[str, dict[str, str]]:
    """The current value of some configuration keys of some topics (AdminClient
    describe_configs), defaults included: {topic: {key: value}}."""
    from kafka.admin import ConfigResource, ConfigResourceType

    described = admin.describe_configs(
        [ConfigResource(ConfigResourceType.TOPIC, n, keys) for n in names], config_filter="all"
    )
    return {
        name: {k: str(c.get("value")) for k, c in configs.items() if k in keys}
        for name, configs in described.get("topic", {}).items()
    }


def enforce_retention(
    admin: Any, prefix: str, specs: list[TopicSpec], retention: Retention | None
) -> list[str]:
    """Sets `retention.ms` on the retained topics whose value differs from the settings';
    returns the topics changed. An incremental SET of one key: the topic's other settings
    stay as they are."""
    from kafka.admin import ConfigResource, ConfigResourceType

    wanted = {f"{prefix}{s.name}": s.kafka_configs(retention)["retention.ms"] for s in specs}
    current = topic_configs(admin, list(wanted), ["retention.ms"])
    changed = [n for n, ms in wanted.items() if current.get(n, {}).get("retention.ms") != ms]
    if changed:
        result = admin.alter_configs(
            [
                ConfigResource(ConfigResourceType.TOPIC, n, {"retention.ms": wanted[n]})
                for n in changed
            ],
            incremental=True,
        )
        failed = {n: r for n, r in result.get("topic", {}).items() if r != "OK"}
        if failed:
            raise KafkaError(f"could not set the retention of {failed}")
        for n in changed:
            log.info("retention.ms of %s set to %s", n, wanted[n])
    return changed


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    parser = argparse.ArgumentParser(prog="python -m infra.kafka")
    parser.add_argument("command", choices=["fetch", "start", "stop", "status", "topics"])
    args = parser.parse_args(argv)
    settings = get_settings()
    broker = Broker.from_settings(settings)
    try:
        if args.command == "fetch":
            print(fetch())
        elif args.command == "start":
            broker.detached = True
            broker.start()
            create_topics(broker.bootstrap, settings.topic_prefix, retention=Retention.of(settings))
            print(
                f"Kafka is up on {broker.bootstrap} (pid {broker.process.pid if broker.process else '?'})"
            )
        elif args.command == "stop":
            broker.stop()
        elif args.command == "status":
            up = port_open(broker.host, broker.port)
            print(f"{broker.bootstrap}: {'listening' if up else 'not listening'}")
            return 0 if up else 1
        elif args.command == "topics":
            create_topics(
                settings.kafka_bootstrap, settings.topic_prefix, retention=Retention.of(settings)
            )
    except KafkaError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
