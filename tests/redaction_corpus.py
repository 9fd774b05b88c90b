"""An invented corpus for the redaction tests: secrets in the contexts a coding
agent meets them, and look-alikes that must stay as they are.

No value here is a real credential. Secret values are made at import time from
a seeded generator (so no token-shaped literal sits in the repository), most
carry FAKE or TEST, and each matches the shape its service uses so that the
rules must recognise it. ``SECRETS`` is a list of ``(kind, text, values)``:
every value must be gone from whatever ``text`` became. ``LOOKALIKES`` is a
list of texts that must come out unchanged.
"""

from __future__ import annotations

import base64
import json
import random
import string

_rng = random.Random(20261129)
UPPER, LOWER, DIGITS = string.ascii_uppercase, string.ascii_lowercase, string.digits
ALNUM = UPPER + LOWER + DIGITS
HEX = "0123456789abcdef"
B64 = ALNUM + "+/"
URLSAFE = ALNUM + "-_"


def r(n: int, alphabet: str = ALNUM) -> str:
    return "".join(_rng.choice(alphabet) for _ in range(n))


def fake(n: int, alphabet: str = ALNUM, tag: str = "FAKE") -> str:
    """``n`` characters of ``alphabet`` that begin with ``tag`` (when it fits the alphabet)."""
    tag = tag if all(c in alphabet for c in tag) else ""
    return tag + r(n - len(tag), alphabet)


def password() -> str:
    return r(4, UPPER) + r(4, LOWER) + r(3, DIGITS) + _rng.choice("!#%&*+=?") + r(3, LOWER)


def pem(kind: str, lines: int = 8) -> str:
    body = "\n".join(r(64, B64) for _ in range(lines)) + "\n" + r(20, B64) + "=="
    return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----"


def jline(text: str) -> str:
    """``text`` as it sits in a transcript line: a JSON string, escapes and all."""
    return json.dumps({"type": "tool_result", "content": text})


# --- values ---------------------------------------------------------------------

AWS_ID = "AKIA" + fake(16, UPPER + DIGITS, "FAKETEST")
AWS_ID2 = "ASIA" + fake(16, UPPER + DIGITS, "TESTFAKE")
AWS_SECRET = fake(40, B64, "FAKE")
AWS_SECRET2 = fake(40, B64, "TEST")
AWS_SESSION = fake(220, B64, "FAKE")
GHP = "ghp_" + fake(36)
GHP2 = "ghp_" + fake(36, tag="TEST")
GHO = "gho_" + fake(36)
GH_FINE = "github_pat_11" + fake(20, UPPER + DIGITS) + "_" + fake(59, ALNUM, "TEST")
GLPAT = "glpat-" + fake(20, URLSAFE)
XOXB = "xoxb-" + r(12, DIGITS) + "-" + r(13, DIGITS) + "-" + fake(24)
XOXP = "xoxp-" + r(12, DIGITS) + "-" + r(12, DIGITS) + "-" + r(13, DIGITS) + "-" + r(32, HEX)
SLACK_HOOK = "T" + fake(10, UPPER + DIGITS) + "/B" + fake(10, UPPER + DIGITS) + "/" + fake(24)
SK_LIVE = "sk_live_" + fake(24)
SK_TEST = "sk_test_" + fake(24, tag="TEST")
RK_LIVE = "rk_live_" + fake(24)
WHSEC = "whsec_" + fake(32)
OPENAI = "sk-proj-" + fake(48, URLSAFE)
OPENAI_OLD = "sk-" + fake(48)
ANTHROPIC = "sk-ant-api03-" + fake(93, URLSAFE) + "AA"
ANTHROPIC2 = "sk-ant-api03-" + fake(93, URLSAFE, "TEST") + "AA"
GOOGLE = "AIza" + fake(35, URLSAFE)
GCP_KEY_ID = fake(40, HEX, "")
GCP_PEM = pem("PRIVATE KEY", 10)
GOCSPX = "GOCSPX-" + fake(28, URLSAFE)
AZ_ACCOUNT = fake(86, B64) + "=="
AZ_SIG = fake(43, ALNUM) + "%3D"
AZ_CLIENT = fake(34, ALNUM + "~._-")
AZ_SB = fake(44, B64)
NPM = "npm_" + fake(36)
NPM2 = "npm_" + fake(36, tag="TEST")
PYPI = "pypi-AgEIcHlwaS5vcmc" + fake(70, URLSAFE)
HF = "hf_" + fake(34, LOWER + UPPER)
SG = "SG." + fake(22, URLSAFE) + "." + fake(43, URLSAFE)
DD = fake(32, HEX, "")
DD_APP = fake(40, HEX, "")
DOCKER_AUTH = base64.b64encode(f"deploy:{password()}".encode()).decode()
TELEGRAM = r(10, "123456789") + ":AA" + fake(33, URLSAFE)
TWILIO_TOKEN = fake(32, HEX, "")
TWILIO_SK = "SK" + fake(32, HEX, "")
X_API_KEY = fake(40, ALNUM)
BASIC = base64.b64encode(f"admin:{password()}".encode()).decode()
BEARER = fake(48, URLSAFE + ".")
CURL_PASS = password()
URL_PASS = password()
URL_PASS_EMPTY_USER = password()
URL_PASS_SLASH_AT = "p@ss/" + password()
REDIS_PASS = password()
MONGO_PASS = password()
MYSQL_PASS = password()
CLI_PASS = password()
CLI_TOKEN = fake(40)
ENV_DB_PASS = password()
ENV_SECRET = fake(32)
YAML_PASS = password()
YAML_TOKEN = fake(40)
JSON_PASS = password()
JSON_SECRET = fake(40)
TOML_PASS = password()
TOML_TOKEN = fake(36)
DJANGO = "django-insecure-" + fake(40, LOWER + DIGITS + "!@#%^&*(-_=+)")
FLASK_SECRET = fake(64, HEX, "")
JWT = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9." + "eyJ" + fake(60, URLSAFE) + "." + fake(43, URLSAFE)
RSA_PEM = pem("RSA PRIVATE KEY", 12)
EC_PEM = pem("EC PRIVATE KEY", 3)
OPENSSH_PEM = pem("OPENSSH PRIVATE KEY", 12)
PGP_PEM = pem("PGP PRIVATE KEY BLOCK", 10)
SHOPIFY = "shpat_" + fake(32, HEX, "")
DIGITALOCEAN = "dop_v1_" + fake(64, HEX, "")
LINEAR = "lin_api_" + fake(40)
VAULT = "hvs." + fake(90, URLSAFE)
MAILGUN = "key-" + fake(32, HEX, "")
DISCORD_HOOK = fake(68, URLSAFE)
NETRC_PASS = password()
HEROKU = f"{r(8, HEX)}-{r(4, HEX)}-{r(4, HEX)}-{r(4, HEX)}-{r(12, HEX)}"
CLOUDFLARE = fake(40, URLSAFE)
AGE = "AGE-SECRET-KEY-1" + fake(58, UPPER + DIGITS, "FAKE")
DOPPLER = "dp.pt." + fake(43)
POSTMAN = "PMAK-" + fake(24, HEX, "") + "-" + fake(34, HEX, "")
PULUMI = "pul-" + fake(40, HEX, "")
TFC = fake(14, LOWER + DIGITS) + ".atlasv1." + fake(67, URLSAFE)
FIGMA = "figd_" + fake(40, URLSAFE)
GRAFANA = "glsa_" + fake(32) + "_" + fake(8, HEX, "")
ATLASSIAN = "ATATT3" + fake(186, URLSAFE + "=")
SUPABASE = "sbp_" + fake(40, HEX, "")
K8S_PASS_B64 = base64.b64encode(password().encode()).decode()
SENTRY_DSN_KEY = fake(32, HEX, "")
PG_ENV_PASS = password()
CONN_STR_PASS = password()
SUBAGENT_TOKEN = "ghp_" + fake(36, tag="SUBA")
SUBAGENT_PASS = password()
PROMPT_KEY = "sk-ant-api03-" + fake(93, URLSAFE, "PROMPT") + "AA"
COLOURED = "ghp_" + fake(36, tag="ANSI")
LINE_START = "glpat-" + fake(20, URLSAFE, "LINESTART")

JSON_API_KEY = fake(32)
AWS_SECRET3 = fake(40, B64, "TEST")
GL_ENV = "glpat-" + fake(20, URLSAFE, "TEST")
AUTH_TOKEN_HEADER = "ghp_" + fake(36, tag="HDR")
PASSPHRASE = password()
SSH_PASS = password()
PROSE_PASS = password()
PROSE_PASS2 = password()
PROSE_PASS3 = password()
REDIS_CLI_PASS = password()
KNOWN_PASS = password()
SQL_PASS = password()

SECRETS: list[tuple[str, str, list[str]]] = [
    # env dumps
    ("env-dump", f"$ env | sort\nHOME=/home/dev\nAWS_ACCESS_KEY_ID={AWS_ID}\nAWS_SECRET_ACCESS_KEY={AWS_SECRET}\nAWS_SESSION_TOKEN={AWS_SESSION}\nPATH=/usr/bin", [AWS_ID, AWS_SECRET, AWS_SESSION]),
    ("env-dump", f"GITHUB_TOKEN={GHP}\nNPM_TOKEN={NPM}\nOPENAI_API_KEY={OPENAI}\nANTHROPIC_API_KEY={ANTHROPIC}", [GHP, NPM, OPENAI, ANTHROPIC]),
    ("env-dump", f"declare -x HF_TOKEN=\"{HF}\"\ndeclare -x SENDGRID_API_KEY=\"{SG}\"\ndeclare -x DD_API_KEY=\"{DD}\"", [HF, SG, DD]),
    # cat .env
    ("dotenv", f"$ cat .env\nDATABASE_URL=postgres://app:{URL_PASS}@db.internal:5432/app\nDB_PASSWORD={ENV_DB_PASS}\nSECRET_KEY={ENV_SECRET}\nSTRIPE_SECRET_KEY={SK_LIVE}\nSTRIPE_WEBHOOK_SECRET={WHSEC}", [URL_PASS, ENV_DB_PASS, ENV_SECRET, SK_LIVE, WHSEC]),
    ("dotenv", f"TWILIO_ACCOUNT_SID=AC{r(32, HEX)}\nTWILIO_AUTH_TOKEN={TWILIO_TOKEN}\nTWILIO_API_KEY={TWILIO_SK}\nTELEGRAM_BOT_TOKEN={TELEGRAM}", [TWILIO_TOKEN, TWILIO_SK, TELEGRAM]),
    ("dotenv", f"DD_APP_KEY={DD_APP}\nAZURE_CLIENT_SECRET={AZ_CLIENT}\nGOOGLE_CLIENT_SECRET={GOCSPX}\nCLOUDFLARE_API_TOKEN={CLOUDFLARE}\nHEROKU_API_KEY={HEROKU}", [DD_APP, AZ_CLIENT, GOCSPX, CLOUDFLARE, HEROKU]),
    ("dotenv", f"PGPASSWORD={PG_ENV_PASS} psql -h db -U app", [PG_ENV_PASS]),
    # YAML / JSON / TOML configs
    ("yaml", f"database:\n  host: db.internal\n  user: app\n  password: {YAML_PASS}\nslack:\n  token: {YAML_TOKEN}\n  webhook: https://hooks.slack.com/services/{SLACK_HOOK}", [YAML_PASS, YAML_TOKEN, SLACK_HOOK]),
    ("yaml", f"apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\ntype: Opaque\ndata:\n  password: {K8S_PASS_B64}", [K8S_PASS_B64]),
    ("json", json.dumps({"db": {"user": "app", "password": JSON_PASS}, "client_secret": JSON_SECRET, "sentry": f"https://{SENTRY_DSN_KEY}@o1.ingest.sentry.io/5"}, indent=2), [JSON_PASS, JSON_SECRET]),
    ("gcp-service-account", json.dumps({"type": "service_account", "project_id": "demo-fake", "private_key_id": GCP_KEY_ID, "private_key": GCP_PEM + "\n", "client_email": "ci@demo-fake.iam.gserviceaccount.com"}, indent=2), [GCP_KEY_ID, GCP_PEM.splitlines()[3]]),
    ("docker-config", json.dumps({"auths": {"registry.example.test": {"auth": DOCKER_AUTH}}}, indent=2), [DOCKER_AUTH]),
    ("toml", f"[database]\nurl = \"mysql://root:{CONN_STR_PASS}@localhost/app\"\npassword = \"{TOML_PASS}\"\n\n[github]\ntoken = \"{TOML_TOKEN}\"", [CONN_STR_PASS, TOML_PASS, TOML_TOKEN]),
    ("npmrc", f"//registry.npmjs.org/:_authToken={NPM2}\n@acme:registry=https://npm.acme.test/", [NPM2]),
    ("pypirc", f"[pypi]\nusername = __token__\npassword = {PYPI}", [PYPI]),
    ("aws-credentials", f"[default]\naws_access_key_id = {AWS_ID2}\naws_secret_access_key = {AWS_SECRET2}", [AWS_ID2, AWS_SECRET2]),
    ("netrc", f"machine api.example.test login deploy password {NETRC_PASS}", [NETRC_PASS]),
    ("django-settings", f"SECRET_KEY = '{DJANGO}'\nDEBUG = True", [DJANGO]),
    ("flask-config", f"app.config['SECRET_KEY'] = '{FLASK_SECRET}'", [FLASK_SECRET]),
    # curl and other commands
    ("curl", f"curl -H 'Authorization: Bearer {BEARER}' https://api.example.test/v1/me", [BEARER]),
    ("curl", f"curl -s -u admin:{CURL_PASS} https://ci.example.test/api/json", [CURL_PASS]),
    ("curl", f"curl -H \"X-API-Key: {X_API_KEY}\" https://api.example.test/items", [X_API_KEY]),
    ("curl", f"curl -H 'Authorization: Basic {BASIC}' https://registry.example.test/v2/", [BASIC]),
    ("curl", f"curl https://api.stripe.com/v1/charges -u {SK_TEST}:", [SK_TEST]),
    ("cli", f"mysql -h db -u root -p{MYSQL_PASS} app < dump.sql", [MYSQL_PASS]),
    ("cli", f"docker login registry.example.test --username ci --password {CLI_PASS}", [CLI_PASS]),
    ("cli", f"vercel deploy --token {CLI_TOKEN} --prod", [CLI_TOKEN]),
    ("cli", f"git clone https://oauth2:{GLPAT}@gitlab.example.test/acme/app.git", [GLPAT]),
    ("cli", f"export VAULT_TOKEN={VAULT}", [VAULT]),
    # connection strings
    ("connection-string", f"DefaultEndpointsProtocol=https;AccountName=fakeacct;AccountKey={AZ_ACCOUNT};EndpointSuffix=core.windows.net", [AZ_ACCOUNT]),
    ("connection-string", f"https://fakeacct.blob.core.windows.net/c/file.txt?sv=2022-11-02&se=2026-12-01&sp=r&sig={AZ_SIG}", [AZ_SIG]),
    ("connection-string", f"Endpoint=sb://fake.servicebus.windows.net/;SharedAccessKeyName=root;SharedAccessKey={AZ_SB}", [AZ_SB]),
    ("connection-string", f"redis://:{REDIS_PASS}@cache.internal:6379/0", [REDIS_PASS]),
    ("connection-string", f"mongodb+srv://admin:{MONGO_PASS}@cluster0.fake.mongodb.net/app?retryWrites=true", [MONGO_PASS]),
    ("connection-string", f"postgresql://:{URL_PASS_EMPTY_USER}@localhost/app", [URL_PASS_EMPTY_USER]),
    ("connection-string", f"amqp://svc:{URL_PASS_SLASH_AT}@mq.internal:5672/vhost", [URL_PASS_SLASH_AT]),
    # PEM blocks, whole and cut
    ("pem", f"$ cat ~/.ssh/id_rsa\n{RSA_PEM}\n", [RSA_PEM.splitlines()[1], RSA_PEM.splitlines()[7]]),
    ("pem-cut", "$ head -5 ~/.ssh/id_ed25519\n" + "\n".join(OPENSSH_PEM.splitlines()[:5]), OPENSSH_PEM.splitlines()[1:5]),
    ("pem", EC_PEM, [EC_PEM.splitlines()[1]]),
    ("pgp", PGP_PEM, [PGP_PEM.splitlines()[2], PGP_PEM.splitlines()[5]]),
    # tokens of many services, in code and prose
    ("code", f"const octokit = new Octokit({{ auth: \"{GHO}\" }});", [GHO]),
    ("code", f"client = OpenAI(api_key=\"{OPENAI_OLD}\")", [OPENAI_OLD]),
    ("code", f"const maps = new google.maps.Map({{ key: '{GOOGLE}' }}); // AIza key", [GOOGLE]),
    ("code", f"stripe.api_key = \"{RK_LIVE}\"", [RK_LIVE]),
    ("code", f"slack = WebClient(token=\"{XOXB}\")\nuser = WebClient(\"{XOXP}\")", [XOXB, XOXP]),
    ("code", f"fetch(url, {{ headers: {{ Authorization: `Bearer {JWT}` }} }})", [JWT]),
    ("code", f"SHOPIFY_TOKEN = \"{SHOPIFY}\"  # admin API", [SHOPIFY]),
    ("code", f"do_client = Client(token=\"{DIGITALOCEAN}\")", [DIGITALOCEAN]),
    ("code", f"linear = LinearClient(\"{LINEAR}\")", [LINEAR]),
    ("code", f"mg = Mailgun(domain='mg.example.test', api_key='{MAILGUN}')", [MAILGUN]),
    ("code", f"WEBHOOK = 'https://discord.com/api/webhooks/{r(18, DIGITS)}/{DISCORD_HOOK}'", [DISCORD_HOOK]),
    ("code", f"identity = \"{AGE}\"", [AGE]),
    ("code", f"doppler_token: {DOPPLER}", [DOPPLER]),
    ("code", f"POSTMAN_API_KEY={POSTMAN}", [POSTMAN]),
    ("code", f"pulumi login --token {PULUMI}", [PULUMI]),
    ("code", f"credentials \"app.terraform.io\" {{ token = \"{TFC}\" }}", [TFC]),
    ("code", f"FIGMA_TOKEN={FIGMA}", [FIGMA]),
    ("code", f"grafana_auth = \"{GRAFANA}\"", [GRAFANA]),
    ("code", f"JIRA_API_TOKEN={ATLASSIAN}", [ATLASSIAN]),
    ("code", f"supabase login --token {SUPABASE}", [SUPABASE]),
    ("code", f"gh auth login --with-token <<< {GH_FINE}", [GH_FINE]),
    ("prose", f"Your new key is {ANTHROPIC2}; keep it safe.", [ANTHROPIC2]),
    ("prose", f"I pasted my token {GHP2} into the config, is that ok?", [GHP2]),
    # at a line start inside JSON-escaped output, coloured output
    ("json-escaped", jline(f"build ok\n{LINE_START}\ndone"), [LINE_START]),
    ("json-escaped", jline(f"remote: \u001b[32m{COLOURED}\u001b[0m\n"), [COLOURED]),
    ("json-escaped", jline(f"{{\"password\": \"{SUBAGENT_PASS}\"}}"), [SUBAGENT_PASS]),
    ("prompt", f"here is the key {PROMPT_KEY} use it to call the API", [PROMPT_KEY]),
    ("json", json.dumps({"apiKey": JSON_API_KEY, "region": "eu-west-1"}), [JSON_API_KEY]),
    ("cli", f"aws configure set aws_secret_access_key {AWS_SECRET3}", [AWS_SECRET3]),
    ("env-dump", f"GITLAB_TOKEN={GL_ENV}\nSHELL=/bin/bash", [GL_ENV]),
    ("curl", f"curl -H 'Authorization: token {AUTH_TOKEN_HEADER}' https://api.github.com/user", [AUTH_TOKEN_HEADER]),
    ("yaml", f"signing:\n  key_id: 0x{r(16, HEX)}\n  passphrase: \"{PASSPHRASE}\"", [PASSPHRASE]),
    ("cli", f"sshpass -p '{SSH_PASS}' ssh deploy@web1", [SSH_PASS]),
    ("subagent-description", f"Check that {SUBAGENT_TOKEN} can push to acme/app", [SUBAGENT_TOKEN]),
    # passwords written as prose, and a known value mentioned again
    ("prose", f"use password {PROSE_PASS} here", [PROSE_PASS]),
    ("prose", f"the password is {PROSE_PASS2}.", [PROSE_PASS2]),
    ("prose", f"I'll connect as admin with password {PROSE_PASS3} to the staging db", [PROSE_PASS3]),
    ("cli", f"redis-cli -h cache.internal -p 6380 -a {REDIS_CLI_PASS} ping", [REDIS_CLI_PASS]),
    ("known-value", f"DB_PASSWORD={KNOWN_PASS}\nok, I will connect with {KNOWN_PASS} now", [KNOWN_PASS]),
    ("sql", f"CREATE USER app WITH PASSWORD '{SQL_PASS}';", [SQL_PASS]),
]

LOOKALIKES: list[str] = [
    # git SHAs and UUIDs
    f"commit {r(40, HEX)}\nAuthor: Dev <dev@acme.test>\nDate:   Mon Nov 2 10:00:00 2026 +0000",
    f"{r(7, HEX)} Fix the token counter\n{r(7, HEX)} Add password reset page",
    f"HEAD is now at {r(40, HEX)} Merge pull request #42",
    f"git rev-parse HEAD\n{r(40, HEX)}",
    f"session {r(8, HEX)}-{r(4, HEX)}-4{r(3, HEX)}-a{r(3, HEX)}-{r(12, HEX)} resumed",
    f"\"request_id\": \"{r(8, HEX)}-{r(4, HEX)}-{r(4, HEX)}-{r(4, HEX)}-{r(12, HEX)}\"",
    f"uuid: {r(8, HEX)}-{r(4, HEX)}-{r(4, HEX)}-{r(4, HEX)}-{r(12, HEX)}",
    # image digests, lockfile hashes
    f"FROM ubuntu:22.04@sha256:{r(64, HEX)}",
    f"docker pull ghcr.io/acme/app@sha256:{r(64, HEX)}",
    f"\"integrity\": \"sha512-{r(86, B64)}==\"",
    f"  resolved \"https://registry.yarnpkg.com/left-pad/-/left-pad-1.3.0.tgz#{r(40, HEX)}\"\n  integrity sha1-{r(27, B64)}=",
    f"requests==2.32.3 \\\n    --hash=sha256:{r(64, HEX)}",
    f"[[package]]\nname = \"idna\"\nfiles = [{{file = \"idna-3.7.tar.gz\", hash = \"sha256:{r(64, HEX)}\"}}]",
    f"{r(64, HEX)}  dist/app-1.2.0.tar.gz",
    f"etag: W/\"{r(32, HEX)}\"",
    # base64 images and blobs
    f"![plot](data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAA{r(300, B64)}=)",
    f"<img src=\"data:image/jpeg;base64,/9j/4AAQSkZJRgABAQ{r(200, B64)}\">",
    # placeholders
    "API_KEY=${API_KEY}",
    "export GITHUB_TOKEN=$GITHUB_TOKEN",
    "token: <your-token>",
    "curl -H 'Authorization: Bearer YOUR_ACCESS_TOKEN_HERE' https://api.example.test",
    "password: changeme",
    "DB_PASSWORD=xxx",
    "OPENAI_API_KEY=sk-...",
    "NPM_TOKEN: ${{ secrets.NPM_TOKEN }}",
    "\"password\": \"********\"",
    "export AWS_SECRET_ACCESS_KEY=",
    "SECRET_KEY=<generate-one>",
    "api_key: YOUR_API_KEY_HERE",
    "PGPASSWORD=$DB_PASS psql -h db",
    "secret_key_base: <%= ENV[\"SECRET_KEY_BASE\"] %>",
    "password = var.db_password",
    # prose about tokens and secrets
    "The run used 12,345 input tokens and 678 output tokens.",
    "Set the password in your keychain, then rotate the secret key monthly.",
    "Create a token with the repo scope; never paste it in a prompt.",
    "The auth flow stores the session token in an httpOnly cookie.",
    "Passwords must be at least 12 characters long.",
    "the password is required",
    "Send a password reset link to the user.",
    "Connect with password authentication disabled, then enable it.",
    "The password was hashed with sha256 and a salt.",
    "Store the password as argon2id hashes, never as plain text.",
    "The passphrase is optional for ssh-keygen -t ed25519.",
    "password v2.1 migration notes are in /docs/auth2.md",
    "redis-cli -h cache.internal ping",
    "digest = hashlib.sha256(salt + password.encode()).hexdigest()",
    # usage records, ids
    "\"usage\": {\"input_tokens\": 3, \"cache_creation_input_tokens\": 4567, \"cache_read_input_tokens\": 123456, \"output_tokens\": 89}",
    "\"max_tokens\": 4096, \"max_output_tokens\": 32000",
    f"\"id\": \"msg_01{r(22, ALNUM)}\"",
    f"\"requestId\": \"req_011C{r(20, ALNUM)}\"",
    f"\"tool_use_id\": \"toolu_01{r(22, ALNUM)}\"",
    f"\"signature\": \"Eo{r(40, B64)}\"",
    # slugs and names
    "https://example.test/blog/sk-learn-pipelines-for-people-who-hate-boilerplate-part-two",
    "aws eks describe-nodegroup --nodegroup-name sk-prod-eu-west-1-cluster-nodes-autoscaling-group",
    "ask-ant-farm", "task-notification sk-short",
    "templates/password-reset-confirmation-email.html",
    "rate limit: tokens-per-minute-limit-exceeded",
    "npm install passport-jwt @auth0/auth0-react",
    # code that names secrets without holding one
    "def login(username: str, password: str) -> Session:",
    "token = get_token()",
    "self.secret = secret",
    "password = os.environ[\"DB_PASSWORD\"]",
    "const apiKey = process.env.API_KEY;",
    "if not token:\n    raise AuthError(\"missing token\")",
    "secretKeyRef:\n  name: db-secret\n  key: password",
    "author: Jane Doe <jane@acme.test>",
    "auth: true",
    "password_hash = bcrypt.hashpw(password.encode(), bcrypt.gensalt())",
    # URLs and addresses without credentials
    "git@github.com:acme/widgets.git",
    "https://dev@github.com/acme/widgets.git",
    "see https://example.com/a@b and mailto:dev@acme.test",
    "http://localhost:8080/api/items?page=2&sort=desc",
    f"arn:aws:iam::{r(12, DIGITS)}:role/deploy-role",
    "ssh deploy@10.0.0.5 -p 2222",
]
