"""Constants shared by the SDK tests and their fixtures."""

PROJECT_ID = "manatee-test"
PROJECT_NUMBER = "123456789012"
POOL = "manatee-pool"
SERVICE_ACCOUNT = "tee-runner"
SA_EMAIL = f"{SERVICE_ACCOUNT}@{PROJECT_ID}.iam.gserviceaccount.com"
ATTESTATION_TOKEN = "eyJhbGciOiJSUzI1NiJ9.attestation-claims.signature"
STS_TOKEN = "federated-token-from-sts"
SA_TOKEN = "impersonated-service-account-token"
ADC_TOKEN = "default-credentials-token"

INSURANCE_CSV = (
    "age,sex,bmi,children,smoker,region,charges\n"
    "19,female,27.9,0,yes,southwest,16884.924\n"
    "18,male,33.77,1,no,southeast,1725.5523\n"
    "28,male,33.0,3,no,southeast,4449.462\n"
)
REAL_CSV = (
    "age,sex,bmi,children,smoker,region,charges\n"
    "33,male,22.705,0,no,northwest,21984.47061\n"
    "32,male,28.88,0,no,northwest,3866.8552\n"
)
