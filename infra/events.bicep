// The Event Grid subscriptions that deliver ACS events to the app. Deployed by the post-deploy
// hook (infra/hooks/postdeploy.sh), after the code is running: Event Grid sends a validation
// handshake to a webhook when it is subscribed, and our handlers answer it.
//
// IncomingCall is filtered on our own numbers (data.to.PhoneNumber.Value, StringIn), as
// Microsoft advises: an unfiltered subscription also receives calls to other numbers of the ACS
// resource (and to ACS users), which would duplicate events and can loop a redirected call.

@description('The Function App deployed by resources.bicep.')
param functionAppName string

@description('The Event Grid system topic of the ACS resource.')
param systemTopicName string

// Our numbers: every service pool's numbers and every agent's direct numbers, read from the same
// files the app settings SERVICE_POOLS and AGENTS are made of (write them in E.164 there). The
// StringIn filter takes at most 25 values.
var pools = loadJsonContent('settings/service-pools.json')
var agents = loadJsonContent('settings/agents.json')
var numbers = union(
  flatten(map(pools, p => p.?numbers ?? [])),
  flatten(map(agents, a => a.?directNumbers ?? []))
)

resource app 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource incomingFunction 'Microsoft.Web/sites/functions@2024-04-01' existing = {
  parent: app
  name: 'acs_incoming'
}

resource recordingsFunction 'Microsoft.Web/sites/functions@2024-04-01' existing = {
  parent: app
  name: 'acs_recordings'
}

resource topic 'Microsoft.EventGrid/systemTopics@2025-02-15' existing = {
  name: systemTopicName
}

// No number yet (settings/*.json empty): no IncomingCall subscription (the hook says so).
resource incomingCall 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = if (!empty(numbers)) {
  parent: topic
  name: 'incoming-call'
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: {
        endpointUrl: 'https://${app.properties.defaultHostName}/api/acs/incoming?code=${incomingFunction.listKeys().default}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [ 'Microsoft.Communication.IncomingCall' ]
      advancedFilters: [
        {
          operatorType: 'StringIn'
          key: 'data.to.PhoneNumber.Value'
          values: numbers
        }
      ]
    }
    // A call unanswered for 30 seconds is gone: retrying an IncomingCall later is pointless.
    retryPolicy: {
      maxDeliveryAttempts: 5
      eventTimeToLiveInMinutes: 1
    }
  }
}

resource recordingStatus 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2025-02-15' = {
  parent: topic
  name: 'recording-file-status'
  properties: {
    destination: {
      endpointType: 'WebHook'
      properties: {
        endpointUrl: 'https://${app.properties.defaultHostName}/api/acs/recordings?code=${recordingsFunction.listKeys().default}'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    eventDeliverySchema: 'EventGridSchema'
    filter: {
      includedEventTypes: [ 'Microsoft.Communication.RecordingFileStatusUpdated' ]
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
  }
}

output subscribedNumbers array = numbers
