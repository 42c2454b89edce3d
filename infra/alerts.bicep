// Log alerts on the app's Application Insights: messages left in a poison queue, failing invocations,
// and (with LAKE_URL) a lake export that falls behind.
// The queries are the ones docs/OPERATIONS.md explains; they read what dci/telemetry.py and the host export.

param location string
param tags object
param resourceToken string

@description('Resource id of the Application Insights component the app exports to.')
param insightsId string

@description('Resource id of an action group to notify (e-mail, Teams, ...); empty: alerts show in the portal only.')
param actionGroupId string = ''

@description('The lake export raises its alert when its oldest outbox entry has waited longer than this (seconds).')
param lakeLagSeconds int = 1800

@description('Invocations failing above this percentage (of at least 20 in the window) raise the failure-rate alert.')
param failureRatePercent int = 5

var actions = { actionGroups: empty(actionGroupId) ? [] : [actionGroupId] }

resource poison 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-poison-${resourceToken}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Portal Insights: messages in a poison queue'
    description: 'A queue message failed every retry and waits in portal-events-poison or cases-poison. docs/OPERATIONS.md says how to read and replay it.'
    severity: 1
    enabled: true
    scopes: [insightsId]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: 'customMetrics | where name == "dci.queue.poison.depth" | extend queue = tostring(customDimensions["messaging.destination.name"]) | summarize depth = max(value) by queue | where depth > 0'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    actions: actions
  }
}

resource failures 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-failures-${resourceToken}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Portal Insights: failure rate'
    description: 'More than ${failureRatePercent}% of function invocations failed in 15 minutes (at least 20 of them).'
    severity: 2
    enabled: true
    scopes: [insightsId]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: 'requests | summarize total = count(), failed = countif(success == false) | where total >= 20 and failed * 100.0 / total > ${failureRatePercent}'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    actions: actions
  }
}

resource lakeBehind 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = {
  name: 'alert-lake-${resourceToken}'
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Portal Insights: lake export behind'
    description: 'The oldest visitor or case waiting for the lake export has waited more than ${lakeLagSeconds} s. docs/OPERATIONS.md (Timers) says what to look at.'
    severity: 2
    enabled: true
    scopes: [insightsId]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: 'customMetrics | where name == "dci.lake.export.lag" | summarize lag = max(valueMax) | where lag > ${lakeLagSeconds}'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: { numberOfEvaluationPeriods: 1, minFailingPeriodsToAlert: 1 }
        }
      ]
    }
    actions: actions
  }
}
