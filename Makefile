# The two commands a newcomer needs: `make demo` and `make test`.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8000

.PHONY: demo test lint install serve worker beat up clean-demo \
	worker-ingestion worker-serving worker-training worker-preparation worker-sending worker-maintenance

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is needed ($(PYTHON) not found); set PYTHON=..."; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

install: $(VENV)/.installed

# The working demo on the embedded default: SQLite, tasks in-process, email to files (var/mail/). No services.
# DEBUG=True is what lets it run without keys of its own, so it listens on 127.0.0.1 only. SITE_URL
# follows PORT, so tracking links in the emails point at this server. What beat would run (sending
# due messages, attribution, experiment results) runs once before serving and then every minute
# beside the web server (manage.py run_due_jobs).
DEMO_ENV := env -u DATABASE_URL -u REDIS_URL -u CACHE_URL DEBUG=True SITE_URL=http://127.0.0.1:$(PORT)
demo: install
	$(DEMO_ENV) $(BIN)/python manage.py migrate --verbosity 0
	$(DEMO_ENV) $(BIN)/python manage.py seed_demo --if-empty --with-surfaces --keys-file var/demo-api-keys.txt
	$(DEMO_ENV) $(BIN)/python manage.py train_engine --if-none-active --watch-days 7
	$(DEMO_ENV) $(BIN)/python manage.py run_due_jobs
	@echo ""
	@echo "  Demo running at http://127.0.0.1:$(PORT)/  (admin: /admin/, API docs: /api/docs/)"
	@echo "  Logins (password = login): marketer, csm (not staff; accounts Acme Retail, Brightside Travel,"
	@echo "  Copper Kettle Cafés), csm2 (the other three), analyst, admin; demo (Administrator, superuser)"
	@echo "  API keys: var/demo-api-keys.txt (written at the first seeding; . var/demo-api-keys.txt exports SK and IK;"
	@echo "  more keys: admin -> API keys -> Add)"
	@echo "  Emails sent: var/mail/"
	@echo ""
	@$(DEMO_ENV) sh -c '$(BIN)/python manage.py run_due_jobs --every 60 --verbosity 0 & jobs=$$!; \
		trap "kill $$jobs 2>/dev/null" EXIT INT TERM; \
		$(BIN)/python manage.py runserver --noreload 127.0.0.1:$(PORT)'

# Runs against DATABASE_URL / REDIS_URL when they are set (as .ci/run does), else the embedded default.
# In TEST_WORKERS processes (pytest-xdist), each test file wholly in one of them, so that what a module
# builds once is built once; each worker has its own test database, Redis databases and data folder
# (personalization/settings_for_tests.py). TEST_WORKERS=0 runs it in this process; `pytest tests/...`
# does too.
TEST_WORKERS ?= 2
test: install
	$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy .
	DJANGO_SETTINGS_MODULE=personalization.settings_for_tests $(BIN)/python manage.py makemigrations --check --dry-run

serve: install
	$(BIN)/gunicorn personalization.wsgi --bind 0.0.0.0:$(PORT) --workers 2

# One worker for every queue: enough for a small box.
worker: install
	$(BIN)/celery -A personalization worker --loglevel info --concurrency 2

# A worker per kind of work (personalization/queues.py, docs/deploy.md): `make worker-sending`, ...
# CONCURRENCY sets the processes of one worker (training: keep it at 1 per box, it uses a core).
CONCURRENCY ?= 2
worker-ingestion worker-serving worker-preparation worker-sending worker-maintenance: worker-%: install
	$(BIN)/celery -A personalization worker -Q $* -n $*@%h --loglevel info --concurrency $(CONCURRENCY)

worker-training: install
	$(BIN)/celery -A personalization worker -Q training -n training@%h --loglevel info --concurrency 1

beat: install
	$(BIN)/celery -A personalization beat --loglevel info

# The production shape in one command (deploy/up.py, docs/deploy.md): migrate, then WEB_PROCESSES
# gunicorn workers on PORT, a worker per queue, beat and the outbox relay, against DATABASE_URL and
# REDIS_URL; every line prefixed with its process. Ctrl-C stops them all cleanly.
up: install
	$(BIN)/python deploy/up.py

clean-demo:
	rm -rf var/
