// Portal Insights for Dataverse: a keyless Flex Consumption function app, its storage and monitoring.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; resource names and tags derive from it.')
param environmentName string

@minLength(1)
@description('Azure region for every resource (one that offers the Flex Consumption plan).')
param location string

@description('Object id of the principal running azd: it may upload the deployment package.')
param principalId string = ''

@description('User when a developer runs azd; ServicePrincipal when a pipeline does (azd env set AZURE_PRINCIPAL_TYPE).')
@allowed(['User', 'ServicePrincipal', 'Group'])
param principalType string = 'User'

@description('Portal host names, comma-separated (PORTAL_ISSUERS), e.g. contoso.powerappsportals.com')
param portalIssuers string

@description('Portal origins allowed to post events, comma-separated (ALLOWED_ORIGINS; the app answers CORS itself).')
param allowedOrigins string

@description('PEM public key of the portal ID tokens; empty: fetched from the portal (PORTAL_PUBLIC_KEY).')
param portalPublicKey string = ''

@description('ImplicitGrantFlow/RegisteredClientId of the portal, when one is registered (PORTAL_CLIENT_ID).')
param portalClientId string = ''

@description('Dataverse environment URL, e.g. https://contoso.crm.dynamics.com; empty: cases from portal events.')
param dataverseUrl string = ''

@description('Six-field NCRONTAB schedule of the case poller (CASE_SCHEDULE).')
param caseSchedule string = '0 */5 * * * *'

@description('Seconds after a case is created before its timeline is assembled; later events assemble it again.')
param caseSettleSeconds int = 60
param timelineLookbackHours int = 72
param stitchWindowHours int = 24
param sessionGapMinutes int = 30

@allowed(['', 'true', 'false'])
@description('Write the timeline note on cases; empty: on whenever Dataverse is configured.')
param writeCaseNotes string = ''

@allowed(['', 'journeys', 'off'])
@description('Each visit of a case journey as a Portal visit activity on the case timeline; empty: journeys whenever Dataverse is configured.')
param timelineActivities string = ''

param retentionDays int = 90

@minValue(1)
@maxValue(90)
@description('A self-service session counts as followed by a case opened within this many days (INSIGHTS_FOLLOW_DAYS).')
param insightsFollowDays int = 7

@description('Six-field NCRONTAB schedule of the insights rollup (INSIGHTS_SCHEDULE).')
param insightsSchedule string = '30 */5 * * * *'

@allowed(['function-key', 'app-service'])
@description('How the report routes are protected: function keys, or App Service authentication (see docs/SECURITY.md).')
param reportsAuth string = 'function-key'

@description('The app\'s https://…/api address, that case notes link to the HTML report by (REPORT_BASE_URL); empty: the app\'s own default host name + /api.')
param reportBaseUrl string = ''

@description('Object id of the Entra group whose members may sign in to the report pages (REPORT_READERS_GROUP; app-service only); empty: anyone in the tenant.')
param reportReadersGroup string = ''

@description('Create a Data Lake Storage account and export the interactions and cases to it as Delta tables (LAKE_URL).')
param lakeEnabled bool = false

@description('Object id of the Customer Insights – Data (or Fabric) service principal granted the lake; empty: none.')
param lakeReaderPrincipalId string = ''

@allowed(['contributor', 'reader'])
@description('The lake reader\'s role: Customer Insights – Data documents Storage Blob Data Contributor; Fabric needs reader.')
param lakeReaderRole string = 'contributor'

@description('Six-field NCRONTAB schedule of the lake export (LAKE_SCHEDULE).')
param lakeSchedule string = '15 */5 * * * *'

@minValue(0)
@description('Hours a replaced lake file is kept for readers and time travel before the daily vacuum deletes it (LAKE_VACUUM_HOURS).')
param lakeVacuumHours int = 168

@description('Resource id of an action group the alerts notify; empty: alerts show in the Azure portal only.')
param alertActionGroupId string = ''

@allowed([512, 2048, 4096])
param instanceMemoryMB int = 2048

@minValue(40)
@maxValue(1000)
param maximumInstanceCount int = 40

var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
// The lake account's name is derived here, not read from its module: the module needs the app's
// identity, and the app's settings need the lake's address.
var lakeUrl = lakeEnabled ? 'abfss://lake@dl${resourceToken}.dfs.${environment().suffixes.storage}/portal' : ''

resource resourceGroup 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: 'rg-${environmentName}'
  location: location
  tags: tags
}

module app 'app.bicep' = {
  name: 'app'
  scope: resourceGroup
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    principalId: principalId
    principalType: principalType
    settings: {
      PORTAL_ISSUERS: portalIssuers
      ALLOWED_ORIGINS: allowedOrigins
      PORTAL_PUBLIC_KEY: portalPublicKey
      PORTAL_CLIENT_ID: portalClientId
      DATAVERSE_URL: dataverseUrl
      CASE_SCHEDULE: caseSchedule
      CASE_SETTLE_SECONDS: string(caseSettleSeconds)
      TIMELINE_LOOKBACK_HOURS: string(timelineLookbackHours)
      STITCH_WINDOW_HOURS: string(stitchWindowHours)
      SESSION_GAP_MINUTES: string(sessionGapMinutes)
      WRITE_CASE_NOTES: writeCaseNotes
      TIMELINE_ACTIVITIES: timelineActivities
      RETENTION_DAYS: string(retentionDays)
      INSIGHTS_FOLLOW_DAYS: string(insightsFollowDays)
      INSIGHTS_SCHEDULE: insightsSchedule
      REPORTS_AUTH: reportsAuth
      REPORT_BASE_URL: reportBaseUrl
      LAKE_URL: lakeUrl
      LAKE_SCHEDULE: lakeSchedule
      LAKE_VACUUM_HOURS: string(lakeVacuumHours)
    }
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
  }
}

module lake 'lake.bicep' = if (lakeEnabled) {
  name: 'lake'
  scope: resourceGroup
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    appPrincipalId: app.outputs.identityPrincipalId
    readerPrincipalId: lakeReaderPrincipalId
    readerRole: lakeReaderRole
  }
}

// With REPORTS_AUTH=app-service: the sign-in's app registration, its federated credential and the
// site's authentication (authsettingsV2), after the app: they need its host name, identity and site.
module entra 'entra.bicep' = if (reportsAuth == 'app-service') {
  name: 'entra'
  scope: resourceGroup
  params: {
    resourceToken: resourceToken
    environmentName: environmentName
    siteName: app.outputs.functionAppName
    defaultHostName: app.outputs.defaultHostName
    identityPrincipalId: app.outputs.identityPrincipalId
    readersGroup: reportReadersGroup
  }
}

module alerts 'alerts.bicep' = {
  name: 'alerts'
  scope: resourceGroup
  params: {
    location: location
    tags: tags
    resourceToken: resourceToken
    insightsId: app.outputs.insightsId
    actionGroupId: alertActionGroupId
  }
}

output AZURE_LOCATION string = location
output AZURE_RESOURCE_GROUP string = resourceGroup.name
output AZURE_FUNCTION_APP_NAME string = app.outputs.functionAppName
output MANAGED_IDENTITY_CLIENT_ID string = app.outputs.identityClientId
output COLLECT_URL string = 'https://${app.outputs.defaultHostName}/api/collect'
output BEACON_URL string = 'https://${app.outputs.defaultHostName}/api/beacon.js'
output LAKE_URL string = lakeUrl
output API_URL string = 'https://${app.outputs.defaultHostName}/api'
// The sign-in's app registration (client id), with REPORTS_AUTH=app-service; empty otherwise.
output REPORTS_SIGN_IN_APP_ID string = reportsAuth == 'app-service' ? entra.outputs.appId : ''
