// The resources of one environment: identity, storage, monitoring, the Flex Consumption app.
// No key or connection string anywhere: the app reaches storage and Application Insights with its
// user-assigned managed identity, and Dataverse with the same identity (an application user there).

param location string
param tags object
param resourceToken string
param principalId string
@description('What kind of principal `principalId` is: User for a developer, ServicePrincipal for a CI pipeline.')
@allowed(['User', 'ServicePrincipal', 'Group'])
param principalType string = 'User'
@description('The app settings the settings model reads (besides storage and monitoring).')
param settings object
param instanceMemoryMB int
param maximumInstanceCount int

var deploymentContainer = 'app-package-${resourceToken}'
// With REPORTS_AUTH=app-service, App Service authentication proves its app registration (entra.bicep)
// with this identity, not a client secret; the setting names the identity by its client id
// (clientSecretSettingName 'OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID' in the site's authsettingsV2).
var signInSettings = settings.REPORTS_AUTH == 'app-service' ? {
  OVERRIDE_USE_MI_FIC_ASSERTION_CLIENTID: identity.properties.clientId
} : {}
// What the code uses: queues (with the host's poison queues) and tables (lakeoutbox: only with
// LAKE_URL, harmless without). Monthly interactions tables (interactionsYYYYMM) are created by the
// app as months begin, and dropped by retention.
var queueNames = ['portal-events', 'portal-events-poison', 'cases', 'cases-poison']
var tableNames = ['links', 'timelines', 'cases', 'state', 'insights', 'lakeoutbox']

// Built-in role definitions (ids as documented by Azure RBAC).
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: 'id-${resourceToken}'
  location: location
  tags: tags
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'st${resourceToken}'
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
  }

  resource blobs 'blobServices' = {
    name: 'default'
    resource deployments 'containers' = {
      name: deploymentContainer
    }
  }

  resource queueService 'queueServices' = {
    name: 'default'
    resource queue 'queues' = [for name in queueNames: {
      name: name
    }]
  }

  resource tableService 'tableServices' = {
    name: 'default'
    resource table 'tables' = [for name in tableNames: {
      name: name
    }]
  }
}

resource logs 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: 'log-${resourceToken}'
  location: location
  tags: tags
  properties: {
    sku: { name: 'PerGB2018' }
    retentionInDays: 30
  }
}

resource insights 'Microsoft.Insights/components@2020-02-02' = {
  name: 'appi-${resourceToken}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: logs.id
    DisableLocalAuth: true
  }
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: 'plan-${resourceToken}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  properties: {
    reserved: true
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: 'func-${resourceToken}'
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
    // No platform CORS: the app answers CORS itself (dci/ingest/cors.py, ALLOWED_ORIGINS), for the
    // collect route only. Platform CORS, when on, takes over every route and the app's own
    // headers have no effect; running both would only make the two lists drift.
    siteConfig: {
      minTlsVersion: '1.2'
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainer}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }

  resource appSettings 'config' = {
    name: 'appsettings'
    properties: union(settings, {
      AzureWebJobsStorage__credential: 'managedidentity'
      AzureWebJobsStorage__clientId: identity.properties.clientId
      AzureWebJobsStorage__blobServiceUri: storage.properties.primaryEndpoints.blob
      AzureWebJobsStorage__queueServiceUri: storage.properties.primaryEndpoints.queue
      AzureWebJobsStorage__tableServiceUri: storage.properties.primaryEndpoints.table
      APPLICATIONINSIGHTS_CONNECTION_STRING: insights.properties.ConnectionString
      APPLICATIONINSIGHTS_AUTHENTICATION_STRING: 'ClientId=${identity.properties.clientId};Authorization=AAD'
      // The app configures the Azure Monitor distro itself (dci/otel.py); the worker passes it each
      // invocation's trace context and leaves the app's logs to it (host.json telemetryMode).
      PYTHON_ENABLE_OPENTELEMETRY: 'true'
      DATAVERSE_CLIENT_ID: identity.properties.clientId
      // The note's link to the report: the app's own address unless the deployment names another.
      REPORT_BASE_URL: empty(settings.REPORT_BASE_URL) ? 'https://${site.properties.defaultHostName}/api' : settings.REPORT_BASE_URL
    }, signInSettings)
  }
}

var storageRoles = [roles.storageBlobDataOwner, roles.storageQueueDataContributor, roles.storageTableDataContributor]

resource appStorageAccess 'Microsoft.Authorization/roleAssignments@2022-04-01' = [for role in storageRoles: {
  name: guid(storage.id, identity.id, role)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', role)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}]

resource appMetrics 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(insights.id, identity.id, roles.monitoringMetricsPublisher)
  scope: insights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// The person running `azd deploy` uploads the package to the deployment container.
resource deployerUpload 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  name: guid(storage.id, principalId, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: principalId
    principalType: principalType
  }
}

output functionAppName string = site.name
output defaultHostName string = site.properties.defaultHostName
output identityClientId string = identity.properties.clientId
output identityPrincipalId string = identity.properties.principalId
output insightsId string = insights.id
