// Everything the app needs in one resource group: a Flex Consumption (FC1) Python 3.11 Function
// App whose user-assigned managed identity reaches storage (blobs, queues, tables), Key Vault,
// Application Insights and ACS without any key; Azure Communication Services and the Event Grid system
// topic of its events. Storage shared keys are disabled: no storage key or connection string
// exists anywhere. Deployed by main.bicep (`azd up`); step by step: docs/deploy.md.

param environmentName string
param location string
param tags object
param acsDataLocation string
param dataverseUrl string
param dataverseClientId string
@secure()
param dataverseClientSecret string
param apiAudience string
param panelClientId string
@secure()
param callbackSecret string
param phoneDefaultRegion string
param publisherPrefix string
param extraCorsOrigins array
param principalId string

// The directory (agents, service pools, callback lists) is kept as JSON files beside this one,
// read at deployment (Bicep's loadTextContent): no JSON is squeezed through environment variables.
var agents = loadTextContent('settings/agents.json')
var servicePools = loadTextContent('settings/service-pools.json')
var callbackLists = loadTextContent('settings/callback-lists.json')

var token = toLower(uniqueString(subscription().id, resourceGroup().id, environmentName))
var appName = 'func-d365phone-${token}'
var packageContainer = 'app-package-${take(token, 12)}'

// Built-in role definition ids (the same in every tenant).
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
  contributor: 'b24988ac-6180-42a0-ab88-20f7382dd24c'
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-d365phone-${token}'
  location: location
  tags: tags
}

// ---- storage: the Functions runtime, our tables and queues, the deployment package ----------

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: take('std365phone${token}', 24)
  location: location
  tags: tags
  sku: { name: 'Standard_LRS' }
  kind: 'StorageV2'
  properties: {
    minimumTlsVersion: 'TLS1_2'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false // identity only: nothing can sign with an account key
    defaultToOAuthAuthentication: true
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: { defaultAction: 'Allow', bypass: 'AzureServices' }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource packageBlobs 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: packageContainer
  properties: { publicAccess: 'None' }
}

// The pools' uploaded audio prompts (docs/pools.md, "Prompts"); private: ACS fetches them
// through the app's signed links, never from storage directly.
resource promptBlobs 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: 'prompts'
  properties: { publicAccess: 'None' }
}

resource blobRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource queueRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource tableRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// The person running azd may read the tables and queues while diagnosing (optional).
resource operatorTableRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  name: guid(storage.id, principalId, roles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: principalId
    principalType: 'User'
  }
}

// ---- monitoring: Application Insights, ingestion by Entra ID only ----------------------------

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-d365phone-${token}'
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-d365phone-${token}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    DisableLocalAuth: true // telemetry is accepted only with the app's Entra token
  }
}

resource insightsRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(insights.id, identity.id, roles.monitoringMetricsPublisher)
  scope: insights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// ---- Azure Communication Services and the system topic of its events -------------------------

resource acs 'Microsoft.Communication/communicationServices@2023-04-01' = {
  name: 'acs-d365phone-${token}'
  location: 'global'
  tags: tags
  properties: { dataLocation: acsDataLocation }
}

// Call Automation and the recording download accept Entra ID tokens: the app's identity gets a
// role on this one resource, and ACS's access key is used nowhere.
resource acsRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(acs.id, identity.id, roles.contributor)
  scope: acs
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.contributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Subscriptions (IncomingCall filtered on our numbers, RecordingFileStatusUpdated) are created by
// events.bicep after the code is deployed: Event Grid validates a webhook when it is subscribed.
resource acsTopic 'Microsoft.EventGrid/systemTopics@2025-02-15' = {
  name: 'evgt-d365phone-${token}'
  location: 'global'
  tags: tags
  properties: {
    source: acs.id
    topicType: 'Microsoft.Communication.CommunicationServices'
  }
}

// ---- Key Vault: the secrets, read by the app through Key Vault references --------------------

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: take('kv-d365phone-${token}', 24)
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
  }
}

resource callbackSecretValue 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'callback-secret'
  properties: { value: callbackSecret }
}

resource dataverseSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = if (!empty(dataverseClientSecret)) {
  parent: vault
  name: 'dataverse-client-secret'
  properties: { value: dataverseClientSecret }
}

resource vaultRole 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identity.id, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// ---- the Function App: Flex Consumption, Python 3.11 ------------------------------------------

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-d365phone-${token}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: { name: 'FC1', tier: 'FlexConsumption' }
  properties: { reserved: true }
}

resource app 'Microsoft.Web/sites@2024-04-01' = {
  name: appName
  location: location
  tags: union(tags, { 'azd-service-name': 'api' })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: { '${identity.id}': {} }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    keyVaultReferenceIdentity: identity.id
    siteConfig: {
      minTlsVersion: '1.2'
      http20Enabled: true
      cors: {
        // The D365 organisation hosts the panel (CIF) and click-to-dial; the app does no CORS itself.
        allowedOrigins: union([dataverseUrl], extraCorsOrigins)
        supportCredentials: false
      }
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${packageContainer}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: 2048
        maximumInstanceCount: 40
      }
      runtime: { name: 'python', version: '3.11' }
    }
  }
}

// App settings as their own resource: they name the app's own host name, and the roles they
// rely on exist before the host first starts. Flex Consumption sets FUNCTIONS_WORKER_RUNTIME and
// FUNCTIONS_EXTENSION_VERSION itself (they are refused here).
resource appSettings 'Microsoft.Web/sites/config@2024-04-01' = {
  parent: app
  name: 'appsettings'
  properties: {
    // Storage by managed identity (identity-based connection; no key, no connection string).
    AzureWebJobsStorage__credential: 'managedidentity'
    AzureWebJobsStorage__clientId: identity.properties.clientId
    AzureWebJobsStorage__blobServiceUri: storage.properties.primaryEndpoints.blob
    AzureWebJobsStorage__queueServiceUri: storage.properties.primaryEndpoints.queue
    AzureWebJobsStorage__tableServiceUri: storage.properties.primaryEndpoints.table
    // Application Insights through OpenTelemetry, authenticated by the same identity.
    APPLICATIONINSIGHTS_CONNECTION_STRING: insights.properties.ConnectionString
    APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.properties.clientId};Authorization=AAD'
    // The worker propagates the host's trace context (host.json telemetryMode: OpenTelemetry);
    // the app configures the exporter itself (shared/telemetry.py), so the worker must not.
    PYTHON_ENABLE_OPENTELEMETRY: 'true'
    APP_VERSION: '1.0.0'
    PUBLIC_BASE_URL: 'https://${app.properties.defaultHostName}'
    PHONE_DEFAULT_REGION: phoneDefaultRegion
    // ACS by managed identity (no ACS_CONNECTION_STRING: no key).
    ACS_ENDPOINT: 'https://${acs.properties.hostName}'
    AZURE_CLIENT_ID: identity.properties.clientId
    ACS_RESOURCE_ID: acs.properties.immutableResourceId
    ENTRA_TENANT_ID: tenant().tenantId
    API_AUDIENCE: apiAudience
    PANEL_CLIENT_ID: panelClientId
    DATAVERSE_URL: dataverseUrl
    DATAVERSE_CLIENT_ID: dataverseClientId
    DATAVERSE_CLIENT_SECRET: '@Microsoft.KeyVault(VaultName=${vault.name};SecretName=dataverse-client-secret)'
    DATAVERSE_PUBLISHER_PREFIX: publisherPrefix
    CALLBACK_SECRET: '@Microsoft.KeyVault(SecretUri=${callbackSecretValue.properties.secretUri})'
    AGENTS: agents
    SERVICE_POOLS: servicePools
    CALLBACK_LISTS: callbackLists
    // Timer schedules: the host resolves %NAME% from app settings, so they must be set here.
    HOUSEKEEPING_SCHEDULE: '0 * * * * *'
    CALLBACK_POLL_SCHEDULE: '0 */15 * * * *'
    ENTERPRISE_SYNC_SCHEDULE: '0 0 * * * *'
    GRAPH_SUBSCRIPTION_SCHEDULE: '0 */15 * * * *'
    ALARM_CHECK_SCHEDULE: '0 * * * * *'
  }
  dependsOn: [
    blobRole
    queueRole
    tableRole
    vaultRole
    insightsRole
    acsRole
    packageBlobs
  ]
}

output functionAppName string = app.name
output publicBaseUrl string = 'https://${app.properties.defaultHostName}'
output acsName string = acs.name
output acsTopicName string = acsTopic.name
output keyVaultName string = vault.name
