// Entry point of `azd up` (azure.yaml): one resource group holding everything the app needs.
// The resources themselves are in resources.bicep; the Event Grid subscriptions of the ACS events
// are in events.bicep, deployed by the post-deploy hook once the code answers the validation
// handshake (infra/hooks/postdeploy.sh). Step by step: docs/deploy.md.
targetScope = 'subscription'

@minLength(1)
@maxLength(40)
@description('azd environment name: names the resource group and seeds every resource name.')
param environmentName string

@minLength(1)
@description('Region of the resource group, the Flex Consumption app, storage and monitoring.')
@metadata({ azd: { type: 'location' } })
param location string

@description('Resource group name; empty: rg-<environmentName>.')
param resourceGroupName string = ''

@description('Data location of the ACS resource (Europe, United States, ...).')
param acsDataLocation string = 'Europe'

@description('Dynamics 365 organisation URL, e.g. https://contoso.crm4.dynamics.com')
param dataverseUrl string

@description('Application (client) id of the app registration that is an Application User in D365.')
param dataverseClientId string

@secure()
@description('Its client secret; stored in Key Vault as dataverse-client-secret. Empty: put it there yourself.')
param dataverseClientSecret string = ''

@description('Application (client) id of the web phone API registration: the aud of the panel\'s v2 tokens.')
param apiAudience string

@description('Application (client) id of the panel\'s SPA app registration.')
param panelClientId string

@secure()
@minLength(32)
@description('Key that signs per-call ACS callback URLs; generated once by the pre-provision hook.')
param callbackSecret string

@description('Region for numbers written without a country code.')
param phoneDefaultRegion string = 'FI'

@description('Publisher prefix of the custom phone call columns, with its underscore.')
param publisherPrefix string = 'new_'

@description('Origins besides the D365 organisation that may call the API from a browser.')
param extraCorsOrigins array = []

@description('Object id of the person running azd: gets data access to storage for diagnosis. Empty: none.')
param principalId string = ''

var tags = { 'azd-env-name': environmentName }

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: empty(resourceGroupName) ? 'rg-${environmentName}' : resourceGroupName
  location: location
  tags: tags
}

module resources 'resources.bicep' = {
  name: 'd365-phone'
  scope: rg
  params: {
    environmentName: environmentName
    location: location
    tags: tags
    acsDataLocation: acsDataLocation
    dataverseUrl: dataverseUrl
    dataverseClientId: dataverseClientId
    dataverseClientSecret: dataverseClientSecret
    apiAudience: apiAudience
    panelClientId: panelClientId
    callbackSecret: callbackSecret
    phoneDefaultRegion: phoneDefaultRegion
    publisherPrefix: publisherPrefix
    extraCorsOrigins: extraCorsOrigins
    principalId: principalId
  }
}

// azd stores these in the environment (.azure/<env>/.env); the hooks read them.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output FUNCTION_APP_NAME string = resources.outputs.functionAppName
output PUBLIC_BASE_URL string = resources.outputs.publicBaseUrl
output ACS_RESOURCE_NAME string = resources.outputs.acsName
output ACS_EVENTS_TOPIC_NAME string = resources.outputs.acsTopicName
output KEY_VAULT_NAME string = resources.outputs.keyVaultName
