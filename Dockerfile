# smsapp production image: one process serving the web app, the scheduler and the send loop.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    SMSAPP_DATA_DIR=/data

# A fixed, non-root uid/gid, so files on the /data volume keep one owner across rebuilds.
RUN groupadd --system --gid 10001 smsapp \
    && useradd --system --uid 10001 --gid smsapp --home-dir /app --no-create-home \
        --shell /usr/sbin/nologin smsapp \
    && mkdir /data \
    && chown smsapp:smsapp /data

WORKDIR /app
COPY . /app

# Editable install on purpose: the app finds its `migrations/` folder next to the `smsapp/`
# package (smsapp/db/migrate.py), and migrations/ is not package data. A regular install would
# copy smsapp/ into site-packages without it, and `smsapp migrate` would find nothing to apply.
RUN pip install --no-cache-dir -e .

# Declared after the chown above, so a new named volume starts out owned by smsapp.
VOLUME ["/data"]
# Numeric, so Kubernetes runAsNonRoot and the host can check it without /etc/passwd.
USER 10001:10001
EXPOSE 8080

# No curl in the slim image: python's urllib raises (exit 1) on a refused connection or a non-2xx.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4)"]

# Migrations are idempotent (and locked on PostgreSQL), so every start applies any pending ones
# first; exec makes the server PID 1 so it receives SIGTERM from `docker stop`.
CMD ["sh", "-c", "smsapp migrate && exec smsapp serve --host 0.0.0.0 --port 8080"]
