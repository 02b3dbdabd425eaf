// Everything the app needs in Azure: storage (tables, queues), a Linux Consumption Function App
// (Python 3.11), Application Insights, Key Vault for secrets, Azure Communication Services and the
// Event Grid subscriptions that deliver IncomingCall and RecordingFileStatusUpdated to the app.
//
// Deploy:  az deployment group create -g <rg> -f infra/main.bicep -p infra/main.parameters.json
// Then:    publish the code (func azure functionapp publish <name>, or zip deploy) and put the
//          Dataverse client secret into the Key Vault secret 'dataverse-client-secret'.

@description('Short name used to derive resource names.')
param appName string

param location string = resourceGroup().location

@description('Dynamics 365 organisation URL, e.g. https://contoso.crm4.dynamics.com')
param dataverseUrl string

@description('Origin of the D365 org that embeds the web phone panel (CORS), e.g. https://contoso.crm4.dynamics.com')
param d365OrgUrl string = dataverseUrl

@description('Entra ID tenant id.')
param tenantId string = subscription().tenantId

@description('Application (client) id of the app registration that is an Application User in D365.')
param dataverseClientId string

@description('Application id URI of the web phone API (audience of the panel\'s tokens).')
param apiAudience string

@description('Region for numbers written without a country code.')
param phoneDefaultRegion string = 'FI'

@description('Publisher prefix of the custom phone call columns, with its underscore.')
param publisherPrefix string = 'new_'

var suffix = uniqueString(resourceGroup().id, appName)
var storageName = toLower(take('st${replace(appName, '-', '')}${suffix}', 24))

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageName
  location: location
  sku: { name: 'Standard_LRS' }
  kind: 'StorageV2'
  properties: {
    minimumTlsVersion: 'TLS1_2'
    allowBlobPublicAccess: false
    supportsHttpsTrafficOnly: true
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${appName}-ai'
  location: location
  kind: 'web'
  properties: { Application_Type: 'web' }
}

resource plan 'Microsoft.Web/serverfarms@2023-12-01' = {
  name: '${appName}-plan'
  location: location
  sku: { name: 'Y1', tier: 'Dynamic' }
  kind: 'functionapp'
  properties: { reserved: true }
}

resource acs 'Microsoft.Communication/communicationServices@2023-04-01' = {
  name: '${appName}-acs-${suffix}'
  location: 'global'
  properties: { dataLocation: 'Europe' }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: take('kv-${appName}-${suffix}', 24)
  location: location
  properties: {
    tenantId: tenantId
    sku: { family: 'A', name: 'standard' }
    enableRbacAuthorization: true
  }
}

resource acsSecret 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'acs-connection-string'
  properties: { value: acs.listKeys().primaryConnectionString }
}

var storageConnection = 'DefaultEndpointsProtocol=https;AccountName=${storage.name};AccountKey=${storage.listKeys().keys[0].value};EndpointSuffix=${environment().suffixes.storage}'

resource app 'Microsoft.Web/sites@2023-12-01' = {
  name: '${appName}-func-${suffix}'
  location: location
  kind: 'functionapp,linux'
  identity: { type: 'SystemAssigned' }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    siteConfig: {
      linuxFxVersion: 'Python|3.11'
      minTlsVersion: '1.2'
      // The panel inside D365 calls the API cross-origin with a bearer token (no cookies).
      cors: {
        allowedOrigins: [ d365OrgUrl ]
        supportCredentials: false
      }
      appSettings: [
        { name: 'FUNCTIONS_EXTENSION_VERSION', value: '~4' }
        { name: 'FUNCTIONS_WORKER_RUNTIME', value: 'python' }
        { name: 'AzureWebJobsFeatureFlags', value: 'EnableWorkerIndexing' }
        { name: 'AzureWebJobsStorage', value: storageConnection }
        { name: 'APPLICATIONINSIGHTS_CONNECTION_STRING', value: insights.properties.ConnectionString }
        { name: 'PUBLIC_BASE_URL', value: 'https://${appName}-func-${suffix}.azurewebsites.net' }
        { name: 'PHONE_DEFAULT_REGION', value: phoneDefaultRegion }
        { name: 'ACS_CONNECTION_STRING', value: '@Microsoft.KeyVault(SecretUri=${acsSecret.properties.secretUri})' }
        { name: 'ACS_RESOURCE_ID', value: acs.properties.immutableResourceId }
        { name: 'ENTRA_TENANT_ID', value: tenantId }
        { name: 'API_AUDIENCE', value: apiAudience }
        { name: 'DATAVERSE_URL', value: dataverseUrl }
        { name: 'DATAVERSE_CLIENT_ID', value: dataverseClientId }
        { name: 'DATAVERSE_CLIENT_SECRET', value: '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/dataverse-client-secret/)' }
        { name: 'DATAVERSE_PUBLISHER_PREFIX', value: publisherPrefix }
        { name: 'HOUSEKEEPING_SCHEDULE', value: '0 * * * * *' }
        { name: 'CALLBACK_POLL_SCHEDULE', value: '0 */15 * * * *' }
        { name: 'ENTERPRISE_SYNC_SCHEDULE', value: '0 0 * * * *' }
        { name: 'GRAPH_SUBSCRIPTION_SCHEDULE', value: '0 */15 * * * *' }
      ]
    }
  }
}

// The Function App reads its secrets from the vault with its managed identity.
resource vaultReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, app.id, 'secrets-user')
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', '4633458b-17de-408a-b874-0445c86b69e6')
    principalId: app.identity.principalId
    principalType: 'ServicePrincipal'
  }
}

// ACS events reach the app through an Event Grid system topic on the ACS resource. The webhook
// subscriptions are created after the code is published (the function key must exist first):
// see README "Deploying to Azure".
resource acsTopic 'Microsoft.EventGrid/systemTopics@2023-12-15-preview' = {
  name: '${appName}-acs-events'
  location: 'global'
  properties: {
    source: acs.id
    topicType: 'Microsoft.Communication.CommunicationServices'
  }
}

output functionAppName string = app.name
output acsTopicName string = acsTopic.name
output keyVaultName string = vault.name
