// The optional Data Lake account the lake export writes Delta tables to (LAKE_URL=abfss://…), for
// Customer Insights – Data, Fabric and Spark to read: hierarchical namespace on, shared keys off
// (every reader and writer signs in with Microsoft Entra ID), TLS 1.2. See docs/CUSTOMER-INSIGHTS.md.

param location string
param tags object
param resourceToken string
@description('Principal id of the app\'s managed identity: it writes the tables.')
param appPrincipalId string
@description('Object id of the Customer Insights – Data (or Fabric, or Spark) service principal that reads the tables; empty: none.')
param readerPrincipalId string = ''
@description('The reader\'s role: Customer Insights – Data documents Storage Blob Data Contributor; Fabric shortcuts need Reader.')
@allowed(['contributor', 'reader'])
param readerRole string = 'contributor'

@description('The container the tables live in (its name is also in LAKE_URL).')
param container string = 'lake'

// Built-in role definitions (ids as documented by Azure RBAC).
var roles = {
  storageBlobDataContributor: 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
  storageBlobDataReader: '2a2b9908-6ea1-4ae2-8e65-a410df84e7d1'
}

resource lake 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: 'dl${resourceToken}'
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: { name: 'Standard_LRS' }
  properties: {
    isHnsEnabled: true
    allowSharedKeyAccess: false
    allowBlobPublicAccess: false
    defaultToOAuthAuthentication: true
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
  }

  resource blobs 'blobServices' = {
    name: 'default'
    resource tables 'containers' = {
      name: container
      properties: { publicAccess: 'None' }
    }
  }
}

resource appWrites 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(lake.id, appPrincipalId, roles.storageBlobDataContributor)
  scope: lake
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

var readerRoleId = readerRole == 'reader' ? roles.storageBlobDataReader : roles.storageBlobDataContributor

resource readerReads 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(readerPrincipalId)) {
  name: guid(lake.id, readerPrincipalId, readerRoleId)
  scope: lake
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', readerRoleId)
    principalId: readerPrincipalId
    principalType: 'ServicePrincipal'
  }
}

output accountName string = lake.name
output dfsEndpoint string = lake.properties.primaryEndpoints.dfs
